// Runs an Ingest in its own process so that a test can SIGKILL it between receiving and storing
// (ingest/session.test.ts). argv[2] is JSON: { url, storePath, clientId }. The batch timer is
// long, so nothing it receives is committed (or acknowledged) before the kill. Prints "ready" once
// subscribed, then "received <n>" as messages arrive.

import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { Ingest } from "../ingest/ingest.ts";

const args = JSON.parse(process.argv[2] ?? "{}") as { url?: string; storePath?: string; clientId?: string };
if (typeof args.url !== "string" || typeof args.storePath !== "string" || typeof args.clientId !== "string") {
  console.error('ingest_child: argv[2] must be JSON {"url","storePath","clientId"}');
  process.exit(2);
}
const store = new SqliteOpsStore(args.storePath);
const ingest = new Ingest({ url: args.url, store, clientId: args.clientId, poolSize: 1, batchMs: 600_000 });
await ingest.start();
console.log("ready");
let last = -1;
setInterval(() => {
  const n = ingest.stats().received;
  if (n !== last) console.log(`received ${(last = n)}`);
}, 20);
