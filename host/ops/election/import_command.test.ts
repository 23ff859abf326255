// `pollkit ops import-election` (the command function the CLI wiring calls) and the ops config's
// election, commissionKey, web.importToken and resultDeadlineMs.

import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ArtifactKind, encodeElectionDefinition, encodeSignedArtifact } from "../../../protocol/generated/device_codec.ts";
import type { CliContext } from "../../cli/context.ts";
import { CliError, setLang } from "../../cli/messages.ts";
import { OpsConfigError, parseOpsConfig } from "../ops.ts";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { p256Key } from "../testing/signed.ts";
import { importElectionCommand, importElectionTexts } from "./import_command.ts";

function ctx(json = false): CliContext & { out: string[] } {
  const out: string[] = [];
  return {
    agentUrl: "",
    json,
    tty: false,
    now: () => 1_800_000_000_000,
    client: () => {
      throw new Error("no agent");
    },
    print: (t) => void out.push(t),
    printJson: (v) => void out.push(JSON.stringify(v)),
    note: () => undefined,
    out,
  };
}

describe("pollkit ops import-election", () => {
  const dir = mkdtempSync(join(tmpdir(), "import-election-"));
  const commission = p256Key();
  const key = Buffer.from(commission.publicKey).toString("hex");
  const config = join(dir, "ops.json");
  writeFileSync(config, JSON.stringify({ mqtt: { url: "mqtt://127.0.0.1:1" }, store: { path: "ops.db" }, commissionKey: key }));
  const body = encodeElectionDefinition({ electionId: "E1", stationId: "S1", contests: [{ id: "c1", options: ["A", "B"] }], pollsCloseMs: 1_800_000_000_000 });
  const unsigned = { kind: ArtifactKind.ELECTION_DEFINITION, stationId: "S1", electionId: "E1", version: 1, body };
  const signed = encodeSignedArtifact({ ...unsigned, signature: new Uint8Array(sign("sha256", encodeSignedArtifact(unsigned), { key: commission.key, dsaEncoding: "ieee-p1363" })) });
  after(() => {
    setLang("en");
    rmSync(dir, { recursive: true, force: true });
  });

  it("imports a signed artifact checked against the configured commission key", async () => {
    writeFileSync(join(dir, "s1.bin"), signed);
    const c = ctx();
    assert.equal(await importElectionCommand(c, config, join(dir, "s1.bin")), 0);
    assert.deepEqual(c.out, ["Imported 1 election definition(s):", "  E1 station S1: 1 contest(s), polls close 2027-01-15 08:00 UTC, commission signature verified"]);
    const store = new SqliteOpsStore(join(dir, "ops.db"));
    assert.deepEqual(store.elections().map((e) => [e.electionId, e.stationId, e.signatureChecked]), [["E1", "S1", true]]);
    store.close();
  });

  it("refuses a forged one, stores nothing, and says so in Arabic too", async () => {
    const forged = signed.slice();
    forged[forged.length - 1] ^= 1;
    writeFileSync(join(dir, "forged.bin"), forged);
    setLang("ar");
    await assert.rejects(importElectionCommand(ctx(), config, join(dir, "forged.bin")), (e: unknown) => e instanceof CliError && e.exitCode === 1 && /لم تُستورد تعريفات الانتخابات: forged\.bin: the commission signature does not verify/.test(e.message));
    setLang("en");
    const store = new SqliteOpsStore(join(dir, "ops.db"));
    assert.equal(store.elections().length, 1, "nothing more stored");
    store.close();
    const json = ctx(true);
    writeFileSync(join(dir, "wide.json"), JSON.stringify({ electionId: "E1", contests: [{ id: "c1", options: ["A", "B"] }] }));
    assert.equal(await importElectionCommand(json, config, join(dir, "wide.json")), 0);
    assert.equal((JSON.parse(json.out[0]) as { imported: Array<{ signed: boolean }> }).imported[0].signed, false);
    for (const [k, t] of importElectionTexts()) assert.match(t.ar, /[\u0600-\u06FF]/, k);
  });

  it("the ops config: election path, commission key, import token, result deadline", () => {
    const c = parseOpsConfig({ mqtt: { url: "mqtt://x" }, store: { path: "a.db" }, election: "defs", commissionKey: "04" + key, web: { importToken: "0123456789abcdef" }, resultDeadlineMs: 3_600_000 }, "/base");
    assert.equal(c.election, "/base/defs");
    assert.equal(c.commissionKeyHex, key);
    assert.equal(c.web.importToken, "0123456789abcdef");
    assert.equal(c.resultDeadlineMs, 3_600_000);
    const d = parseOpsConfig({ mqtt: { url: "mqtt://x" }, store: { path: "a.db" } }, "/base");
    assert.deepEqual([d.commissionKeyHex, d.web.importToken, d.resultDeadlineMs], [null, null, 6 * 3_600_000]);
    assert.throws(() => parseOpsConfig({ mqtt: { url: "mqtt://x" }, store: { path: "a" }, commissionKey: "xyz" }, "/"), (e: unknown) => e instanceof OpsConfigError && /commissionKey: .*P-256/.test(e.message));
    assert.throws(() => parseOpsConfig({ mqtt: { url: "mqtt://x" }, store: { path: "a" }, web: { importToken: "short" } }, "/"), /importToken must be a string of at least 16/);
    assert.throws(() => parseOpsConfig({ mqtt: { url: "mqtt://x" }, store: { path: "a" }, resultDeadlineMs: "6h" }, "/"), /resultDeadlineMs must be a number/);
  });
});
