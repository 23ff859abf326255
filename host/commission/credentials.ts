// The technician's credentials as the CLI keeps them: in POLLKIT_HOME (default
// $XDG_CONFIG_HOME/pollkit, else ~/.config/pollkit):
//   technician.key   the technician's private key (PKCS#8 PEM, 0600)    `pollkit token keygen`
//   technician.pub   its public key (hex X || Y), to give the commission
//   token.bin        the commission's token in use                       `pollkit token use`
//   authority.json   { lastIssuedMs }: issued_ms only grows, even for two commands in one ms
// Mutating CLI verbs sign each command with them (signCommand).

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command, TechnicianToken } from "../../protocol/generated/device_codec.ts";
import { readToken } from "./artifacts.ts";
import { authorize, signedCommandId } from "./authorize.ts";
import { parsePrivateKey, privateKeyPem, readPrivateKeyFile, type P256Key } from "./keys.ts";

export function pollkitHome(env: NodeJS.ProcessEnv): string {
  if (env.POLLKIT_HOME) return env.POLLKIT_HOME;
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "pollkit");
}

export const TECHNICIAN_KEY = "technician.key";
export const TECHNICIAN_PUB = "technician.pub";
export const TOKEN_FILE = "token.bin";
const STATE_FILE = "authority.json";

export interface Credentials {
  token: Uint8Array;
  body: TechnicianToken;
  key: P256Key;
}

/** The credentials in `home`, or null when no token is in use. Throws when they are damaged. */
export function loadCredentials(home: string): Credentials | null {
  const tokenFile = join(home, TOKEN_FILE);
  if (!existsSync(tokenFile)) return null;
  const token = new Uint8Array(readFileSync(tokenFile));
  const body = readToken(token).token;
  const key = readPrivateKeyFile(join(home, TECHNICIAN_KEY));
  return { token, body, key };
}

/**
 * Puts a token (and the technician key it was issued for) in use. Checks that the key's public
 * half is the one inside the token. Returns the token's body.
 */
export function useToken(home: string, token: Uint8Array, key: P256Key): TechnicianToken {
  const body = readToken(token).token;
  const pub = body.publicKey ?? new Uint8Array(0);
  if (!Buffer.from(pub).equals(Buffer.from(key.publicKey))) {
    throw new Error(`the token of ${body.technicianId} was issued for another key than this technician key`);
  }
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, TECHNICIAN_KEY), privateKeyPem(key), { mode: 0o600 });
  writeFileSync(join(home, TOKEN_FILE), token);
  return body;
}

/** The technician key kept in `home`, if any. */
export function homeTechnicianKey(home: string): P256Key | null {
  const f = join(home, TECHNICIAN_KEY);
  return existsSync(f) ? parsePrivateKey(readFileSync(f, "utf8")) : null;
}

/** The next issued_ms: the clock, but always above the last one this CLI used (persisted). */
export function nextIssuedMs(home: string, now: number): number {
  const f = join(home, STATE_FILE);
  let last = 0;
  try {
    const v = JSON.parse(readFileSync(f, "utf8")) as { lastIssuedMs?: unknown };
    if (typeof v.lastIssuedMs === "number" && Number.isSafeInteger(v.lastIssuedMs)) last = v.lastIssuedMs;
  } catch {
    // none yet
  }
  const issued = Math.max(Math.floor(now), last + 1);
  mkdirSync(home, { recursive: true });
  const tmp = `${f}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ lastIssuedMs: issued }) + "\n");
  renameSync(tmp, f);
  return issued;
}

/**
 * The command with a fresh id and the technician's authority for `deviceId`, or the command as
 * it is (no id: the agent numbers it) when no token is in use: the device then answers DENIED.
 */
export function signCommand(env: NodeJS.ProcessEnv, deviceId: string, command: Command, now: number = Date.now()): { command: Command; signed: boolean } {
  const home = pollkitHome(env);
  const creds = loadCredentials(home);
  if (creds === null) return { command, signed: false };
  const withId: Command = { ...command, id: signedCommandId() };
  return { command: authorize(withId, deviceId, creds.token, creds.key, nextIssuedMs(home, now)), signed: true };
}
