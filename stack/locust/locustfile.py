"""Load for the producer API, with the fields and value ranges of the reference load generator.

Two user classes; `streamctl load --profile` picks one:
  SeedUser  (profile seed): waits 1-3 s between tasks, like a shop's customers.
  MaxUser   (profile max):  no wait, Locust's fast HTTP client, for throughput.
Each posts 5 transactions for every health check.
"""

from __future__ import annotations

import random
import time
import uuid

from locust import FastHttpUser, HttpUser, between, constant

MAX_BACKOFF_S = 30.0
CATEGORIES = ["Electronics", "Books", "Clothing", "Home", "Toys"]
BRANDS = ["Samsung", "Apple", "Nike", "Sony", "Adidas"]
PAYMENT_METHODS = ["Credit Card", "Debit Card", "PayPal", "Pix"]
PRODUCTS = {
    "Electronics": ["Smartphone", "Laptop", "Headphones", "Smartwatch", "Tablet"],
    "Books": ["Novel", "Cookbook", "Biography", "Comic", "Textbook"],
    "Clothing": ["T-Shirt", "Jeans", "Jacket", "Sneakers", "Dress"],
    "Home": ["Lamp", "Blender", "Pillow", "Chair", "Vase"],
    "Toys": ["Puzzle", "Doll", "Drone", "Board Game", "Lego Set"],
}


def make_transaction() -> dict:
    category = random.choice(CATEGORIES)
    price = round(random.uniform(10, 500), 2)
    quantity = random.randint(1, 5)
    return {
        "transaction_id": str(uuid.uuid4()),
        "product_id": random.randint(1000, 9999),
        "product_name": random.choice(PRODUCTS[category]),
        "product_category": category,
        "product_price": price,
        "product_quantity": quantity,
        "product_brand": random.choice(BRANDS),
        "total_amount": price * quantity,  # unrounded, as the reference generator sends it
        "currency": "BRL",
        "customer_id": random.randint(1, 10000),
        "transaction_date": "now",
        "payment_method": random.choice(PAYMENT_METHODS),
    }


def post_transaction(user) -> None:
    """A 429 (admission control: the job is behind) counts as a failed request, as every non-2xx does:
    the transaction was not accepted. The user then waits the Retry-After the API asked for, as a
    well-behaved client does, instead of adding to the load that made the job fall behind."""
    with user.client.post("/transaction", json=make_transaction(), name="POST /transaction",
                          catch_response=True) as response:
        if response.status_code == 429:
            retry_after = retry_after_s(response.headers)
            response.failure(f"429 the pipeline is behind (Retry-After {retry_after:g} s)")
            time.sleep(retry_after)  # gevent's: only this user waits


def retry_after_s(headers) -> float:
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(headers.get("Retry-After") or headers.get("retry-after") or 1)))
    except ValueError:
        return 1.0


def health(user) -> None:
    user.client.get("/health", name="GET /health")


SHOPPING = {post_transaction: 5, health: 1}


class SeedUser(HttpUser):
    tasks = SHOPPING
    wait_time = between(1, 3)


class MaxUser(FastHttpUser):
    tasks = SHOPPING
    wait_time = constant(0)
