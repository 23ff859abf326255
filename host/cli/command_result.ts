// Checks a device's answer to a command (CommandResult in JSON form): anything but STATUS_OK
// becomes exit 5 with the device's status and message.

import type { CommandResultJson } from "../control/api.ts";
import { enumLabel, enumNumber } from "./format.ts";
import { CliError, EXIT, t } from "./messages.ts";

const STATUS_OK = 0;
const STATUS_DENIED = 2;

export function requireOk(deviceId: string, result: CommandResultJson): void {
  const status = enumNumber("Status", result.status) ?? STATUS_OK;
  if (status === STATUS_OK) return;
  const message = typeof result.message === "string" && result.message !== "" ? ` (${result.message})` : "";
  throw new CliError(
    EXIT.deviceFailure,
    t("command.rejected", { device: deviceId, status: enumLabel("Status", status), detail: message }),
    status === STATUS_DENIED ? t("command.deniedHint") : t("command.rejectedHint", { device: deviceId }),
  );
}
