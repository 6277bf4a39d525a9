package streamctl.job;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * The retry rule, one keyed state value and one event-time timer per transaction id.
 *
 * <p>Of the copies of one transaction id, sorted by (event time, topic position), a copy counts when it is
 * the first or its predecessor's event time lies more than the horizon before its own; the others are
 * duplicates (streamctl/pipeline/windows.py mirrors the rule for validate).
 *
 * <p>Copies are decided as they arrive and emitted at once as signed deltas (counted +1, or duplicate +1),
 * so nothing waits for the watermark here. A copy that arrives after a later copy of its id (two partitions
 * read at different paces) can change the decision about that later copy only: the operator then emits the
 * later copy's correction (counted -1 and duplicate +1, or the reverse). Every such correction belongs to a
 * window the watermark has not closed (its copy lies after the arriving one, which is not late), so the
 * window aggregation downstream, which sums the deltas, sees the final decision of every copy.
 *
 * <p>State per id: the copies the watermark has not passed (with the values a correction needs), plus the
 * event time of the latest one it has passed. One timer per id, at (latest copy + horizon), moved when a later
 * copy arrives, clears it without reading it: from then on no copy can arrive within the horizon after any
 * of them.
 */
public final class RetryRule extends KeyedProcessFunction<String, Row, Row> {
    private static final long serialVersionUID = 1L;

    /** Input columns, in this order: the job's `countable` view, amount as exact decimal text. */
    static final int ID = 0, CATEGORY = 1, BRAND = 2, PAYMENT_METHOD = 3, CURRENCY = 4, QUANTITY = 5,
            AMOUNT = 6, POSITION = 7;

    public static final TypeInformation<Row> DECIDED = Types.ROW_NAMED(
            new String[] {"category", "brand", "payment_method", "currency", "product_quantity", "amount",
                          "counted", "duplicate", "event_time"},
            Types.STRING, Types.STRING, Types.STRING, Types.STRING, Types.INT, Types.STRING, Types.LONG, Types.LONG,
            Types.LOCAL_DATE_TIME);

    private final long horizonMs;
    private transient ValueState<byte[]> copies;

    public RetryRule(long horizonMs) {
        this.horizonMs = horizonMs;
    }

    /** The countable records, keyed by transaction id, as signed deltas per copy (event time kept). */
    public static DataStream<Row> decide(DataStream<Row> countable, long horizonMs) {
        return countable
                .keyBy(new TransactionId())
                .process(new RetryRule(horizonMs), DECIDED)
                .name("RetryRule: first copy of each transaction id in the horizon")
                .uid("streamctl-retry-rule");
    }

    static final class TransactionId implements KeySelector<Row, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Row row) {
            return (String) row.getField(ID);
        }
    }

    @Override
    public void open(OpenContext openContext) {
        copies = getRuntimeContext().getState(
                new ValueStateDescriptor<>("copies", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws IOException {
        long time = ctx.timestamp();
        long watermark = ctx.timerService().currentWatermark();
        if (time <= watermark) {
            return; // late: never happens by the job's event-time rule; dropped, as every event-time operator does
        }
        Copy arriving = new Copy(time, (Long) row.getField(POSITION), (String) row.getField(CATEGORY),
                (String) row.getField(BRAND), (String) row.getField(PAYMENT_METHOD), (String) row.getField(CURRENCY),
                (Integer) row.getField(QUANTITY), (String) row.getField(AMOUNT));
        byte[] stored = copies.value();
        if (stored == null) { // the common case: an id not seen within the horizon
            arriving.counted = true;
            emit(out, ctx, arriving, 1, 0);
            copies.update(encode(List.of(arriving)));
            ctx.timerService().registerEventTimeTimer(time + horizonMs);
            return;
        }
        List<Copy> group = decode(stored, watermark);
        long latestBefore = group.get(group.size() - 1).time;
        int at = 0;
        while (at < group.size() && group.get(at).before(arriving)) {
            at++;
        }
        group.add(at, arriving);
        arriving.counted = at == 0 || time - group.get(at - 1).time > horizonMs;
        emit(out, ctx, arriving, arriving.counted ? 1 : 0, arriving.counted ? 0 : 1);
        if (at + 1 < group.size()) { // only the next copy's predecessor changed
            Copy next = group.get(at + 1);
            boolean counted = next.time - time > horizonMs;
            if (counted != next.counted) {
                next.counted = counted;
                emit(out, ctx, next, counted ? 1 : -1, counted ? -1 : 1);
            }
        }
        copies.update(encode(group));
        if (time > latestBefore) { // the id's one timer follows its latest copy, so it clears without a read
            ctx.timerService().deleteEventTimeTimer(latestBefore + horizonMs);
            ctx.timerService().registerEventTimeTimer(time + horizonMs);
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) {
        // The id's only timer, one horizon after its latest copy: from here on no copy can arrive within the
        // horizon after any of its copies. Cleared without reading it (a burst of ids means a burst of
        // timers a horizon later, each of which would otherwise read its value back).
        copies.clear();
    }

    private static void emit(Collector<Row> out, Context ctx, Copy copy, long counted, long duplicate) {
        Row decided = Row.of(copy.category, copy.brand, copy.paymentMethod, copy.currency, copy.quantity,
                copy.amount, counted, duplicate,
                LocalDateTime.ofEpochSecond(Math.floorDiv(copy.time, 1000L),
                        (int) Math.floorMod(copy.time, 1000L) * 1_000_000, ZoneOffset.UTC));
        // The output keeps the copy's event time: a correction lands in the window of the copy it corrects.
        ((org.apache.flink.streaming.api.operators.TimestampedCollector<Row>) out).setAbsoluteTimestamp(copy.time);
        out.collect(decided);
    }

    /** One copy of a transaction; the values are kept while the watermark has not passed it. */
    static final class Copy {
        final long time;
        final long position;
        boolean counted;
        final String category, brand, paymentMethod, currency, amount;
        final Integer quantity;

        Copy(long time, long position, String category, String brand, String paymentMethod, String currency,
             Integer quantity, String amount) {
            this.time = time;
            this.position = position;
            this.category = category;
            this.brand = brand;
            this.paymentMethod = paymentMethod;
            this.currency = currency;
            this.quantity = quantity;
            this.amount = amount;
        }

        boolean settled() {
            return category == null;
        }

        boolean before(Copy other) {
            return time < other.time || (time == other.time && position < other.position);
        }
    }

    static byte[] encode(List<Copy> group) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + 96 * group.size());
        try (DataOutputStream data = new DataOutputStream(bytes)) {
            data.writeInt(group.size());
            for (Copy copy : group) {
                data.writeLong(copy.time);
                data.writeLong(copy.position);
                data.writeBoolean(copy.counted);
                data.writeBoolean(!copy.settled());
                if (!copy.settled()) {
                    data.writeUTF(copy.category);
                    data.writeUTF(copy.brand);
                    data.writeUTF(copy.paymentMethod);
                    data.writeUTF(copy.currency);
                    data.writeInt(copy.quantity);
                    data.writeUTF(copy.amount);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /**
     * The stored copies in order. Of those the watermark has passed, only the latest is kept, and without
     * values: every copy still to come lies after it, so it alone can be their predecessor, and its own
     * decision can no longer change.
     */
    static List<Copy> decode(byte[] stored, long watermark) throws IOException {
        DataInputStream data = new DataInputStream(new ByteArrayInputStream(stored));
        int size = data.readInt();
        List<Copy> group = new ArrayList<>(size + 1);
        for (int i = 0; i < size; i++) {
            long time = data.readLong();
            long position = data.readLong();
            boolean counted = data.readBoolean();
            Copy copy = data.readBoolean()
                    ? new Copy(time, position, data.readUTF(), data.readUTF(), data.readUTF(), data.readUTF(),
                               data.readInt(), data.readUTF())
                    : new Copy(time, position, null, null, null, null, null, null);
            if (time <= watermark && !copy.settled()) {
                copy = new Copy(time, position, null, null, null, null, null, null);
            }
            copy.counted = counted;
            if (!group.isEmpty() && copy.time <= watermark) {
                group.clear(); // an earlier settled copy: superseded by this one
            }
            group.add(copy);
        }
        return group;
    }
}
