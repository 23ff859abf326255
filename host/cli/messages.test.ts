// The message catalogue: both languages for every key, the same placeholders in each, real Arabic,
// Arabic names for every value of the schema enums the CLI shows, and the language choice.

import { test } from "node:test";
import assert from "node:assert/strict";
import { root } from "../../protocol/node/schema.ts";
import { ENUM_LABELS_AR, EXIT, allMessages, exitCodeLines, langFromEnv, t } from "./messages.ts";

const placeholders = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const ARABIC = /[\u0600-\u06FF]/;

test("every message has English and Arabic text with the same placeholders", () => {
  for (const [key, text] of allMessages()) {
    assert.ok(text.en.trim() !== "" && text.ar.trim() !== "", `${key} is empty in a language`);
    assert.deepEqual(placeholders(text.ar), placeholders(text.en), `${key}: placeholders differ`);
    if (/[a-z]{3}/.test(text.en.replace(/\{\w+\}/g, ""))) assert.match(text.ar, ARABIC, `${key}: Arabic text expected`);
    assert.doesNotMatch(text.ar, /[\u0660-\u0669\u200E\u200F]/, `${key}: Western digits and no invisible direction marks`);
  }
});

test("t fills placeholders and leaves unknown ones (cli-progress fills its own)", () => {
  assert.equal(t("error.unknownDevice", { device: "VVD-1" }, "en"), "No device VVD-1 is connected to the agent.");
  assert.equal(t("error.unknownDevice", { device: "VVD-1" }, "ar"), "لا يوجد جهاز VVD-1 متصل بالوكيل.");
  assert.match(t("dfu.progress", {}, "en"), /\{bar\}/);
});

test("agent-not-running error tells what to do next", () => {
  assert.match(t("hint.startAgent", {}, "en"), /pollkit agent --config <file>/);
  assert.match(t("hint.startAgent", {}, "ar"), /pollkit agent --config <file>/);
});

test("the language follows LC_ALL, then LC_MESSAGES, then LANG", () => {
  assert.equal(langFromEnv({ LANG: "ar_EG.UTF-8" }), "ar");
  assert.equal(langFromEnv({ LANG: "en_US.UTF-8" }), "en");
  assert.equal(langFromEnv({ LC_ALL: "en_GB.UTF-8", LANG: "ar_SA.UTF-8" }), "en");
  assert.equal(langFromEnv({ LC_ALL: "", LC_MESSAGES: "ar_JO", LANG: "en_US" }), "ar");
  assert.equal(langFromEnv({}), "en");
});

test("one exit-code table, 0 to 7, each with a meaning", () => {
  assert.deepEqual(Object.values(EXIT), [0, 1, 2, 3, 4, 5, 6, 7]);
  const lines = exitCodeLines();
  assert.equal(lines.length, 8);
  assert.match(lines[3], /3 {2}agent not reachable/);
});

test("every value of the enums the CLI shows has an Arabic name", () => {
  for (const name of ["Peripheral", "Verdict", "ChargeState", "ChargeMode", "RebootReason", "Status", "TransferKind"]) {
    for (const value of Object.keys(root.lookupEnum(`pollkit.v1.${name}`).values)) {
      assert.ok(ENUM_LABELS_AR[value], `no Arabic name for ${value}`);
    }
  }
});
