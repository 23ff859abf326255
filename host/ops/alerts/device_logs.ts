// Evidence for the alerts from the devices' log lines. Ingest keeps each device's last log lines in
// memory (Ingest.logTail: newest last, no timestamps, not stored). The console looks at a device's
// tail whenever ingest reports something from it and takes the lines that are new since its last
// look as received at that moment (the device's latest receipt then, on the console's clock): a
// "journal full" line among them is the evidence of the journal-full alert, until a health sample
// received after it shows room again (alerts.ts journalHasRoom). A device refuses a record when its
// journal is full, logs "journal full: record of kind N refused" and reports health within two
// seconds; the line reaches the console only while a host is attached (refusals while it is away
// show in Health.error_count and the backlog instead).
//
// Limits: memory only (a console restart forgets the evidence; the health-based half of the
// alert does not need it); a tail that repeats one line exactly may hide new copies of it (the
// fewest new lines that explain the change are taken).

import { journalHasRoom, type AlertOptions, type DeviceEvidence } from "./alerts.ts";
import type { HealthSample } from "../store/store.ts";

/** The lines of a device's log that say its journal refused a record. */
export const JOURNAL_FULL_LINE = /journal full/i;

/** Lines of the previous tail kept per device to find where the new ones start. */
const KEEP = 16;

/**
 * The lines of `now` that came after `before` (the end of an earlier look at the same tail, which
 * drops its oldest lines as new ones come): the fewest that explain the change. All of `now` when
 * `before` is not found in it (first look, or more new lines than the tail keeps).
 */
export function newLines(before: readonly string[], now: readonly string[]): readonly string[] {
  if (before.length === 0) return now;
  for (let end = now.length - 1; end >= 0; end--) {
    let match = true;
    for (let i = 0; i < before.length && end - i >= 0; i++) {
      if (now[end - i] !== before[before.length - 1 - i]) {
        match = false;
        break;
      }
    }
    if (match) return now.slice(end + 1);
  }
  return now;
}

export class DeviceLogWatch {
  private readonly seen = new Map<string, readonly string[]>();
  private readonly journalFull = new Map<string, number>();

  clear(): void {
    this.seen.clear();
    this.journalFull.clear();
  }

  /**
   * Looks at a device's log tail (oldest first) at `atMs`; returns whether its evidence changed.
   * A new "journal full" line sets the evidence to `atMs` (the latest such line counts).
   */
  observe(deviceId: string, tail: readonly string[], atMs: number): boolean {
    const before = this.seen.get(deviceId) ?? [];
    if (tail.length === 0 && before.length === 0) return false;
    const fresh = newLines(before, tail);
    if (fresh.length === 0) return false;
    this.seen.set(deviceId, tail.slice(-KEEP));
    if (!fresh.some((l) => JOURNAL_FULL_LINE.test(l))) return false;
    this.journalFull.set(deviceId, Math.max(atMs, this.journalFull.get(deviceId) ?? 0));
    return true;
  }

  /** A health sample: one received after the evidence that shows room clears it. Returns whether it did. */
  noteHealth(sample: HealthSample, opts: AlertOptions): boolean {
    const at = this.journalFull.get(sample.deviceId);
    if (at === undefined || sample.receivedMs <= at || !journalHasRoom(sample.health, opts)) return false;
    this.journalFull.delete(sample.deviceId);
    return true;
  }

  /** The device's evidence for the alerts, or undefined without any. */
  evidence(deviceId: string): DeviceEvidence | undefined {
    const journalFullMs = this.journalFull.get(deviceId);
    return journalFullMs === undefined ? undefined : { journalFullMs };
  }
}
