// Technician authority on commands (Node side): Command.authority = Authority { token, issued_ms,
// signature over SHA-256(Command encoded with `authority` empty || device id (UTF-8) || issued_ms
// as 8 bytes big-endian) }. The command's id is part of what is signed, so a signed command keeps
// its id all the way to the device: the CLI picks ids in [CLI_COMMAND_ID_MIN, 2^32 - 1], which the
// agent's own ids (below 2^31) never reach.

import { randomInt } from "node:crypto";
import { encodeAuthority, encodeCommand, type Command } from "../../protocol/generated/device_codec.ts";
import { commandSigningBytes } from "../../device/services/authority.ts";
import { Command as CommandType } from "../../protocol/node/schema.ts";
import { signP256, type P256Key } from "./keys.ts";

export const CLI_COMMAND_ID_MIN = 0x80000000;

/** A fresh command id for a signed command. */
export function signedCommandId(): number {
  return CLI_COMMAND_ID_MIN + randomInt(0, 0x7fffffff);
}

/**
 * Returns a copy of `command` carrying the technician's authority for `deviceId`. The command
 * needs its final id (see signedCommandId) before it is signed.
 */
export function authorize(command: Command, deviceId: string, token: Uint8Array, technicianKey: P256Key, issuedMs: number): Command {
  if (!Number.isSafeInteger(issuedMs) || issuedMs <= 0) throw new RangeError(`issued_ms must be a positive integer, not ${issuedMs}`);
  const signature = signP256(technicianKey, commandSigningBytes(command, deviceId, issuedMs));
  return { ...command, authority: encodeAuthority({ token, issuedMs, signature }) };
}

/** The command in the control API's JSON form (protobufjs: bytes base64, 64-bit as numbers). */
export function commandToJson(command: Command): Record<string, unknown> {
  const msg = CommandType.decode(encodeCommand(command));
  return CommandType.toObject(msg, { longs: Number, enums: Number, bytes: String }) as Record<string, unknown>;
}
