// The result acceleration device's role: the ballot scanner and the receipt printer on their
// UARTs, and the tally service over the role's region of the data flash. Engine subset.

import { TallyService } from "../services/tally/service.ts";
import { BallotScanner } from "../drivers/ballot_scanner.ts";
import { EscPosPrinter } from "../drivers/escpos_printer.ts";
import { Peripheral } from "../../protocol/generated/device_codec.ts";
import type { RoleContext } from "./roles.ts";

export function resultRole(c: RoleContext): TallyService | null {
  const p = c.platform;
  if (p.uarts.scanner === undefined) return null;
  return new TallyService({
    platform: p,
    record: function (kind: number, payload: Uint8Array, cb: (seq: number) => void) {
      c.record(kind, payload, cb);
    },
    journal: c.journal,
    sha256: function (data: Uint8Array, cb: (err: null, digest: Uint8Array) => void) {
      cb(null, c.sha256(data));
    },
    scanner: new BallotScanner({ uart: p.uarts.scanner, timers: p.timers }),
    printer: p.uarts.printer !== undefined ? new EscPosPrinter({ uart: p.uarts.printer, timers: p.timers }) : null,
    roleLog: c.regions.roleLog,
    stationId: function () {
      return c.stationId();
    },
    onChange: function () {
      c.changed();
    },
    onVoucher: function (err) {
      if (err !== null) c.fault(Peripheral.PRINTER, "voucher not printed: " + err.message);
    },
  });
}
