// Test helper (outbox.test.ts): puts records 1..count into an outbox one transaction at a time and
// prints "committed <seq>" after each put() has returned, until killed.
// Usage: tsx host/outbox/testing/put_child.ts <path> <count> [FULL|NORMAL]
import { Outbox } from "../outbox.ts";

const [path, countArg, syncArg] = process.argv.slice(2);
if (!path || !countArg) {
  console.error("usage: put_child.ts <path> <count> [FULL|NORMAL]");
  process.exit(2);
}
const synchronous = syncArg === "NORMAL" ? "NORMAL" : "FULL";
const outbox = new Outbox({ path, synchronous });
const count = Number(countArg);
const payload = new Uint8Array(200).fill(0x5a);
for (let seq = 1; seq <= count; seq++) {
  outbox.put([{ deviceId: "VVD-KILL", channel: "record", seq, payload, receivedMs: Date.now() }]);
  // A synchronous write to the pipe: the parent sees the line only after the commit returned.
  process.stdout.write(`committed ${seq}\n`);
}
outbox.close();
console.log("done");
