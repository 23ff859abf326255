// The verification device's role: card reader (PN532 on I2C), fingerprint module (UART), the
// matcher, and the verification service over the role's region of the data flash. Engine subset.

import { VerificationService } from "../services/verification/service.ts";
import { Pn532 } from "../drivers/pn532.ts";
import { FingerprintModule } from "../drivers/fingerprint_module.ts";
import { Matcher } from "../biometrics/matcher.ts";
import type { RoleContext } from "./roles.ts";

export function verificationRole(c: RoleContext): VerificationService | null {
  const p = c.platform;
  if (p.uarts.fingerprint === undefined) return null;
  return new VerificationService({
    platform: p,
    record: function (kind: number, payload: Uint8Array, cb: (seq: number) => void) {
      c.record(kind, payload, cb);
    },
    reader: new Pn532({ bus: p.i2c, timers: p.timers }),
    fingerprint: new FingerprintModule({ uart: p.uarts.fingerprint, timers: p.timers }),
    matcher: new Matcher({}),
    roleLog: c.regions.roleLog,
    journal: c.journal,
    sha256: c.sha256,
    onChange: function () {
      c.changed();
    },
  });
}
