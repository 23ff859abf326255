// Device settings that a technician sets and that must survive a power cut or a reboot (today: the
// charge mode). Kept power-safe on the platform's settings flash with the pattern the artifact
// store and the firmware update use for their state: a Journal whose newest record is the value.
// Engine subset.
//
// RECORD (varints): format (1), chargeMode. A later firmware may append fields to format 1; a
// reader takes the fields it knows and ignores the rest.
//
// Power safety: a new value is one journal append (CRC-32 and sequence number per entry), then the
// older values are acknowledged, so the journal reclaims their pages and never the newest. A cut
// at any byte leaves the old value or the new one. What open() cannot trust falls back to the
// default (NORMAL) and says why, and nothing else on the device depends on this flash.

import type { Flash } from "../platform/platform.ts";
import { Journal, JOURNAL_OK, PAGE_HEADER_SIZE } from "./journal.ts";
import { sizeVarint32, writeVarint32, readVarint32, type Writer, type Reader } from "../../protocol/codec_runtime.ts";
import { ChargeMode } from "../../protocol/generated/device_codec.ts";

export const SETTINGS_FORMAT = 1;

export interface DeviceSettingsOptions {
  /** Platform.settingsFlash: at least 2 pages. */
  flash: Flash;
}

function validChargeMode(mode: number): boolean {
  return mode === ChargeMode.NORMAL || mode === ChargeMode.STORAGE || mode === ChargeMode.MAINTAIN;
}

export function encodeSettings(chargeMode: number): Uint8Array {
  const w: Writer = { b: new Uint8Array(sizeVarint32(SETTINGS_FORMAT) + sizeVarint32(chargeMode)), p: 0 };
  writeVarint32(w, SETTINGS_FORMAT);
  writeVarint32(w, chargeMode);
  return w.b;
}

export class DeviceSettings {
  _f: Flash;
  _j: Journal;
  _ok: boolean;
  _mode: number;
  /** The mode in force is the one on flash. */
  _saved: boolean;

  constructor(options: DeviceSettingsOptions) {
    this._f = options.flash;
    this._j = new Journal({ flash: options.flash });
    this._ok = false;
    this._mode = ChargeMode.NORMAL;
    this._saved = false;
  }

  /**
   * Reads the settings (at boot). Returns "" when they were read as saved (or none was ever
   * saved), else why a default was taken; chargeMode() then tells what is in force.
   */
  open(): string {
    this._mode = ChargeMode.NORMAL;
    this._saved = false;
    const st = this._j.open();
    this._ok = st.code === JOURNAL_OK;
    if (!this._ok) return "settings flash cannot hold a journal (" + this._f.pageCount + " pages of " + this._f.pageSize + " bytes): charge mode normal";
    const newest: Uint8Array[] = [];
    this._j.forEachUnacked(0, function (seq: number, data: Uint8Array) {
      newest[0] = data;
    });
    const torn = st.tornTail ? "a settings write cut by power loss was dropped" : "";
    if (newest.length === 0) {
      if (torn !== "") return torn + ": charge mode normal";
      return this._blank() ? "" : "settings flash holds no readable record (a write cut by power loss, or damage): charge mode normal";
    }
    const r: Reader = { b: newest[0], p: 0 };
    let format = -1;
    let mode = -1;
    try {
      format = readVarint32(r);
      mode = readVarint32(r);
    } catch (e) {
      format = -1;
    }
    if (format !== SETTINGS_FORMAT) return (torn !== "" ? torn + "; " : "") + "saved settings do not parse: charge mode normal";
    if (!validChargeMode(mode)) return (torn !== "" ? torn + "; " : "") + "saved charge mode " + mode + " is not a charge mode: normal";
    this._mode = mode;
    this._saved = true;
    return torn !== "" ? torn + ": the charge mode saved before it stays" : "";
  }

  /** The charge mode in force (ChargeMode). */
  chargeMode(): number {
    return this._mode;
  }

  /** Saves a new charge mode: null once it is on flash, else why not (and nothing changed). */
  setChargeMode(mode: number): string | null {
    if (!validChargeMode(mode)) return "not a charge mode: " + mode;
    if (!this._ok) return "charge mode not saved: the settings flash is not usable";
    if (mode === this._mode && this._saved) return null;
    const data = encodeSettings(mode);
    const seq = this._j.append(function () {
      return data;
    });
    if (seq < 0) return "charge mode not saved: settings journal code " + seq;
    if (seq > 1) this._j.ack(seq - 1);
    this._mode = mode;
    this._saved = true;
    return null;
  }

  /** True when no page carries anything in its header area (never written, or erased). */
  _blank(): boolean {
    const n = this._f.pageSize < PAGE_HEADER_SIZE ? this._f.pageSize : PAGE_HEADER_SIZE;
    for (let p = 0; p < this._f.pageCount; p++) {
      const h = this._f.read(p, 0, n);
      for (let i = 0; i < n; i++) if (h[i] !== 0xff) return false;
    }
    return true;
  }
}
