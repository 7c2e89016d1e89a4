/**
 * Endpoint secrets encrypted at rest: AES-256-GCM with the key from
 * HOOKLINE_SECRET_KEY (or, with the embedded PostgreSQL, a key Hookline makes
 * once and keeps in its data directory). A stored secret reads
 * `enc:v1:` + base64(12-byte IV | 16-byte tag | ciphertext); a value without
 * that prefix is a plaintext secret from before encryption, which the
 * process seals when it starts (see sealStoredSecrets).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const PREFIX = "enc:v1:";
/** Opened secrets kept in memory at most (deliveries open one per attempt). */
const CACHE_MAX = 10_000;

/** Seals and opens endpoint secrets with one key. */
export class SecretBox {
  private readonly opened = new Map<string, string>();

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error(`the secret key must be 32 bytes, got ${key.length}`);
  }

  /** Whether `stored` is sealed (not a legacy plaintext secret). */
  static isSealed(stored: string): boolean {
    return stored.startsWith(PREFIX);
  }

  /** Encrypts a secret for storage (a new IV each time). */
  seal(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const ct = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString("base64");
  }

  /** Decrypts a stored secret; throws if the key does not fit. Legacy plaintext passes through. */
  open(stored: string): string {
    if (!SecretBox.isSealed(stored)) return stored;
    const cached = this.opened.get(stored);
    if (cached !== undefined) return cached;
    const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    if (this.opened.size >= CACHE_MAX) this.opened.clear();
    this.opened.set(stored, plain);
    return plain;
  }

  /** Opens each secret of a stored list, keeping the expiries. */
  openAll<T extends { secret: string }>(secrets: readonly T[]): T[] {
    return secrets.map((s) => ({ ...s, secret: this.open(s.secret) }));
  }
}

/** Parses HOOKLINE_SECRET_KEY: 32 bytes as 64 hex digits or as base64. */
export function parseSecretKey(value: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, "hex") : Buffer.from(value, "base64");
  if (key.length !== 32) {
    throw new Error("HOOKLINE_SECRET_KEY: must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -hex 32)");
  }
  return key;
}

/**
 * The key of the embedded setup: read from `secret.key` in the data
 * directory, made there (readable by its owner only) the first time.
 */
export async function dataDirSecretKey(dataDir: string): Promise<Buffer> {
  const file = join(dataDir, "secret.key");
  try {
    return parseSecretKey((await readFile(file, "utf8")).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  await chmod(file, 0o600);
  return key;
}
