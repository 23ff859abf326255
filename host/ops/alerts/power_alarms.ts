// PowerAlarm journal records (RECORD_KIND_POWER_ALARM) kept per device: the latest record (by
// sequence number) of each alarm kind, raised or cleared. The alerts read them next to the latest
// health sample (alerts.ts pushRecordAlarms). Node only.

import type { PowerAlarmState } from "./alerts.ts";
import type { StoredRecord } from "../store/store.ts";
import { decodeAlarm, recordPayload, RecordKind } from "../views/payloads.ts";

export class PowerAlarmBook {
  private readonly byDevice = new Map<string, Map<number, PowerAlarmState>>();
  /** Records that did not decode (authentic but unreadable). */
  undecodable = 0;

  clear(): void {
    this.byDevice.clear();
    this.undecodable = 0;
  }

  /** Applies records (any kinds; only POWER_ALARM is used); returns the devices whose alarms changed. */
  apply(records: ReadonlyArray<Pick<StoredRecord, "deviceId" | "seq" | "kind" | "bytes" | "timeMs" | "receivedMs">>): string[] {
    const changed = new Set<string>();
    for (const r of records) {
      if (r.kind !== RecordKind.POWER_ALARM) continue;
      const p = recordPayload(r.bytes);
      const a = p.ok ? decodeAlarm(p.value) : p;
      if (!a.ok) {
        this.undecodable++;
        continue;
      }
      let m = this.byDevice.get(r.deviceId);
      if (!m) this.byDevice.set(r.deviceId, (m = new Map()));
      const old = m.get(a.value.kind);
      if (old && old.seq >= r.seq) continue;
      m.set(a.value.kind, {
        kind: a.value.kind,
        active: a.value.active,
        seq: r.seq,
        timeMs: r.timeMs,
        receivedMs: r.receivedMs,
        batteryMv: a.value.batteryMv,
        socPermille: a.value.stateOfChargePermille,
        temperatureDecic: a.value.temperatureDecic,
        chargerFaults: a.value.chargerFaults,
        chargeMode: a.value.chargeMode,
      });
      changed.add(r.deviceId);
    }
    return [...changed];
  }

  /** The latest record of each alarm kind of a device. */
  of(deviceId: string): PowerAlarmState[] {
    const m = this.byDevice.get(deviceId);
    return m ? [...m.values()] : [];
  }

  /** Active alarm kinds of a device, as a bit set like Health.power_alarms. */
  activeBits(deviceId: string): number {
    let bits = 0;
    for (const a of this.of(deviceId)) if (a.active && a.kind > 0 && a.kind < 31) bits |= 1 << a.kind;
    return bits;
  }
}
