// `pollkit status <device>`: one device in detail: identity, health with units, counters.

import type { DeviceDetail } from "../../control/api.ts";
import type { CliContext } from "../context.ts";
import {
  enumLabel,
  formatAgo,
  formatBytes,
  formatClock,
  formatCurrent,
  formatDecic,
  formatDuration,
  formatMv,
  formatPermille,
  hex32,
  keyFingerprint,
  none,
  peripheralFaultNames,
  renderTable,
  type Cell, enumBitNames } from "../format.ts";
import { EXIT, t, type ExitCode, type MessageKey } from "../messages.ts";
import { roleLabel } from "./devices.ts";

export async function statusCommand(ctx: CliContext, deviceId: string): Promise<ExitCode> {
  const d = await ctx.client().device(deviceId);
  if (ctx.json) {
    ctx.printJson({ ...d, publicKeyFingerprint: keyFingerprint(d.publicKeyHex) });
    return EXIT.ok;
  }
  ctx.print(renderTable(null, statusRows(d, ctx.now()), ctx.tty));
  return EXIT.ok;
}

export function statusRows(d: DeviceDetail, now: number): Cell[][] {
  const rows: Cell[][] = [];
  const section = (key: MessageKey): void => void rows.push([{ content: t(key), colSpan: 2 }]);
  const field = (key: MessageKey, value: string | number): void => void rows.push([t(key), value]);

  section("section.identity");
  field("field.device", d.deviceId);
  field("field.role", roleLabel(d.role));
  field("field.hardware", d.hardwareModel || none());
  field("field.firmware", d.firmwareVersion || none());
  field("field.bootId", hex32(d.bootId));
  field("field.transport", d.transport);
  field("field.address", d.address);
  field("field.state", d.state);
  field("field.lastSeen", formatAgo(d.lastSeenMs, now));
  field("field.keyFingerprint", keyFingerprint(d.publicKeyHex));

  section("section.health");
  // proto3 JSON leaves out zero values: a field missing from a health report is 0.
  const h = d.health;
  if (h === null) field("field.state", t("status.noHealth"));
  else {
    field("field.batteryMv", formatMv(h.batteryMv ?? 0));
    field("field.stateOfCharge", formatPermille(h.stateOfChargePermille ?? 0, 1));
    field("field.current", formatCurrent(h.currentMa ?? 0));
    field("field.temperature", formatDecic(h.temperatureDecic ?? 0));
    field("field.chargeState", enumLabel("ChargeState", h.chargeState ?? 0));
    field("field.chargeMode", enumLabel("ChargeMode", h.chargeMode ?? 0));
    field("field.chargerFaults", h.chargerFaults ? hex32(h.chargerFaults) : t("value.noFaults"));
    field("field.powerAlarms", enumBitNames("PowerAlarmKind", h.powerAlarms ?? 0));
    field("field.cycleCount", h.cycleCount ?? 0);
    field("field.stateOfHealth", formatPermille(h.stateOfHealthPermille ?? 0, 1));
    field("field.dischargeRate", `${((h.dischargePermillePerHour ?? 0) / 10).toFixed(1)} %/h`);
    field("field.station", h.stationId || none());
    field("field.pollsState", enumLabel("PollsState", h.pollsState ?? 0));
    field("field.uptime", formatDuration(h.uptimeS ?? 0));
    field("field.rebootReason", enumLabel("RebootReason", h.rebootReason ?? 0));
    field("field.freeMemory", formatBytes(h.freeMemoryBytes ?? 0));
    field("field.freeStorage", formatBytes(h.freeStorageBytes ?? 0));
    field("field.journalBacklog", h.journalBacklog ?? 0);
    field("field.peripheralFaults", peripheralFaultNames(h.peripheralFaults ?? 0));
    field("field.clock", formatClock(h.clockMs));
    field("field.errorCount", h.errorCount ?? 0);
  }

  section("section.counters");
  field("field.records", d.counters.records);
  field("field.duplicates", d.counters.duplicates);
  field("field.errors", d.counters.errors);
  return rows;
}
