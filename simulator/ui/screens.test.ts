// The message catalogue covers every screen the verification device can show, in Arabic, Kurdish
// Sorani and English, with every parameter substituted, RTL-marked and in local digits.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { LANGUAGES, RLM, catalogueKeys, isRtl, localDigits, paramsOf, renderScreen } from "./screens.ts";
import * as keys from "../../device/services/verification/screens.ts";

/** Every screen key the device code names: the K_* constants and each rejection reason. */
function deviceKeys(): string[] {
  const out = new Set<string>();
  for (const [name, value] of Object.entries(keys)) {
    if (name.startsWith("K_") && typeof value === "string" && name !== "K_REJECTED") out.add(value);
  }
  for (const r of keys.REJECT_KEYS) out.add(keys.K_REJECTED + r);
  return [...out].sort();
}

test("every device screen has a text in every language, and the catalogue has nothing else", () => {
  assert.deepEqual(catalogueKeys(), deviceKeys());
  // The parameters a screen's text uses are the ones the device passes: checked on the flow's
  // and service's source, where every screen(...) call with parameters names its key constant.
  const src = ["flow.ts", "service.ts"].map((f) => readFileSync(new URL(`../../device/services/verification/${f}`, import.meta.url), "utf8")).join("\n");
  let checked = 0;
  const consts = Object.entries(keys).filter(([n, v]) => n.startsWith("K_") && typeof v === "string") as [string, string][];
  for (const [name, key] of consts) {
    const re = new RegExp(`screen\\(${name}, \\{([^}]*)\\}`, "g");
    for (const m of src.matchAll(re)) {
      const given = m[1].split(",").map((p) => p.split(":")[0].trim()).filter((p) => p.length > 0).sort();
      assert.deepEqual(given, paramsOf(key), `${key}: parameters passed = parameters used`);
      checked++;
    }
  }
  assert.ok(checked >= 8, `${checked} screen calls with parameters checked`);
  for (const key of catalogueKeys()) {
    for (const lang of LANGUAGES) {
      const params: { [k: string]: number } = {};
      for (const p of paramsOf(key)) params[p] = 7;
      const text = renderScreen({ key, params }, lang);
      assert.ok(!/\{[a-z_]+\}/.test(text), `${key} ${lang}: every parameter substituted`);
      assert.ok(text.length > 5);
    }
  }
});

test("Arabic and Sorani are right-to-left marked and use Eastern Arabic digits; English is plain", () => {
  const s = { key: "verify.present_finger", params: { attempt: 2, max: 3 } };
  const ar = renderScreen(s, "ar");
  const ckb = renderScreen(s, "ckb");
  const en = renderScreen(s, "en");
  assert.equal(en, "Place your finger on the sensor (attempt 2 of 3).");
  assert.ok(ar.startsWith(RLM) && ckb.startsWith(RLM));
  assert.ok(!en.includes(RLM));
  assert.ok(ar.includes("٢") && ar.includes("٣") && !/[0-9]/.test(ar), ar);
  assert.ok(ckb.includes("٢") && ckb.includes("٣") && !/[0-9]/.test(ckb), ckb);
  assert.ok(ar.includes("المحاولة"));
  assert.ok(ckb.includes("هەوڵی"));
  assert.equal(localDigits("1207", "ar"), "١٢٠٧");
  assert.equal(localDigits("1207", "en"), "1207");
  assert.ok(isRtl("ckb") && isRtl("ar") && !isRtl("en"));
  // Every Arabic-script text really is in Arabic script (no English left behind).
  for (const key of catalogueKeys()) {
    for (const lang of ["ar", "ckb"] as const) {
      const t = renderScreen({ key, params: {} }, lang);
      assert.ok(!/[A-Za-z]{3,}/.test(t.replace(/\{[a-z_]+\}/g, "")), `${key} ${lang} has Latin words: ${t}`);
    }
  }
});

test("unknown keys and missing parameters are shown, never thrown", () => {
  assert.equal(renderScreen({ key: "no.such.screen", params: {} }, "en"), "[unknown screen no.such.screen]");
  assert.equal(renderScreen({ key: "verify.verified", params: {} }, "en"), "VERIFIED. The voter may vote. Voted so far: {verified}");
  assert.equal(renderScreen({ key: "device.error", params: { part: "register" } }, "en"), "Device error (station register). Call a technician.");
  assert.ok(renderScreen({ key: "device.error", params: { part: "register" } }, "ar").includes("سجل المحطة"));
  assert.ok(renderScreen({ key: "device.error", params: { part: "reader" } }, "ckb").includes("خوێنەری کارت"));
});
