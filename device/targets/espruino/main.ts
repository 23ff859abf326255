// Entry of the verification device's Espruino bundle (device/build/build.ts, target "espruino":
// one minified IIFE script; main_rad.ts is the result device's). Installation and build-time
// settings: boot.ts. Engine subset.

import { bootEspruino } from "./boot.ts";
import { verificationRole } from "../../roles/verification.ts";

bootEspruino({ verification: verificationRole }, 1);
