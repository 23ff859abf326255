// The two device roles as factories the firmware core calls at boot: a build for one role links
// only that role's services and drivers (the verification device carries no tally, the result
// device no matcher). Engine subset.

import type { Platform } from "../platform/platform.ts";
import type { DataRegions } from "../platform/flash_partition.ts";
import type { Journal } from "../services/journal.ts";
import type { VerificationService } from "../services/verification/service.ts";
import type { TallyService } from "../services/tally/service.ts";

/** What a role's services need from the firmware core. */
export interface RoleContext {
  platform: Platform;
  regions: DataRegions;
  journal: Journal;
  /** Journals a record (signed when its kind requires); cb gets the seq or a negative code. */
  record(kind: number, payload: Uint8Array, cb: (seq: number) => void): void;
  /** Telemetry: state worth reporting changed. */
  changed(): void;
  /** A part failed (bit 1 << Peripheral). */
  fault(part: number, text: string): void;
  stationId(): string;
  sha256(data: Uint8Array): Uint8Array;
}

export interface RoleSet {
  verification?: (c: RoleContext) => VerificationService | null;
  result?: (c: RoleContext) => TallyService | null;
}
