import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteOpsStore } from "./sqlite_store.ts";
import { storeContract } from "./store_contract.ts";

// The store contract (store_contract.ts) on ":memory:" databases; the restart test on a file in a
// temp dir, opened again.
storeContract({
  name: "SQLite",
  fresh: async ({ reopenable }) => {
    if (!reopenable) {
      return {
        store: new SqliteOpsStore(":memory:"),
        reopen: () => {
          throw new Error("a :memory: store cannot be opened again");
        },
      };
    }
    const dir = mkdtempSync(join(tmpdir(), "ops-store-"));
    const path = join(dir, "ops.db");
    return {
      store: new SqliteOpsStore(path),
      reopen: () => new SqliteOpsStore(path),
      dispose: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  bulkBudgetMs: 3000,
});
