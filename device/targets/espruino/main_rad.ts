// Entry of the result acceleration device's Espruino bundle (device/build/build.ts, target
// "espruino-rad"). Settings and installation as in main.ts. Engine subset.

import { bootEspruino } from "./boot.ts";
import { resultRole } from "../../roles/result.ts";

bootEspruino({ result: resultRole }, 2);
