-- wrk script: POST a fresh, valid transaction (the reference generator's ranges) on every request.
local categories = {"Electronics", "Books", "Clothing", "Home", "Toys"}
local brands = {"Samsung", "Apple", "Nike", "Sony", "Adidas"}
local payments = {"Credit Card", "Debit Card", "PayPal", "Pix"}
local counter = 0

local function hex(n)
  local parts = {}
  for i = 1, n do parts[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(parts)
end

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(os.time() + (seed or 0))
end

request = function()
  counter = counter + 1
  local cents = math.random(1000, 50000)
  local quantity = math.random(1, 5)
  local id = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-a" .. hex(3) .. "-" .. hex(12)
  local body = string.format(
    '{"transaction_id":"%s","product_id":%d,"product_name":"Item %d","product_category":"%s",' ..
    '"product_price":%d.%02d,"product_quantity":%d,"product_brand":"%s","total_amount":%d.%02d,' ..
    '"currency":"BRL","customer_id":%d,"transaction_date":"now","payment_method":"%s"}',
    id, math.random(1000, 9999), counter, categories[math.random(1, 5)], math.floor(cents / 100), cents % 100, quantity,
    brands[math.random(1, 5)], math.floor(cents * quantity / 100), (cents * quantity) % 100, math.random(1, 10000),
    payments[math.random(1, 4)])
  return wrk.format("POST", "/transaction", {["Content-Type"] = "application/json"}, body)
end
