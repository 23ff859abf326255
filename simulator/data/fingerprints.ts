// Where the real fingerprint minutiae templates are (simulator/data/fingerprints: the FVC2002 B
// sets as ISO/IEC 19794-2 records, the standard's annex samples and truncated records; sources
// and licences in its README). The simulator's fingerprint module serves them, the tests and
// bench:match read them. POLLKIT_FINGERPRINTS points elsewhere (a folder laid out the same way).

import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const FINGERPRINTS_DIR = process.env.POLLKIT_FINGERPRINTS ?? fileURLToPath(new URL("./fingerprints/", import.meta.url));
export const FVC2002_DIR = join(FINGERPRINTS_DIR, "fvc2002");
