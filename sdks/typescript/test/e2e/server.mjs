// A real oytel-server for the end-to-end tests: a fresh SQLite database, a partner with a
// sandbox key and a live key (with $200 of balance), and the server on a free port.
//
// The binary is OYTEL_SERVER_BIN or the workspace's target/debug/oytel-server (`cargo build
// -p oytel-server`). Without it the tests are reported as skipped, never as passed, unless
// OYTEL_REQUIRE_SERVER=1 (CI), which makes them fail instead.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const BIN =
  process.env.OYTEL_SERVER_BIN ??
  new URL("../../../../target/debug/oytel-server", import.meta.url).pathname;

/** Why the end-to-end tests cannot run here, if they cannot. */
export function missing() {
  if (existsSync(BIN)) return undefined;
  const why = `no oytel-server at ${BIN}: run \`cargo build -p oytel-server\` or set OYTEL_SERVER_BIN`;
  if (process.env.OYTEL_REQUIRE_SERVER === "1") throw new Error(why);
  return why;
}

/** Starts a server; `stop()` ends it and removes its database. */
export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "oytel-node-"));
  const env = {
    ...process.env,
    OYTEL_DATABASE_URL: `sqlite:${join(dir, "oytel.db")}`,
    OYTEL_LOG_FORMAT: "json",
    OYTEL_WEBHOOK_ALLOW_PRIVATE: "true",
    OYTEL_WEBHOOK_RETRY_SCHEDULE: "200ms,500ms,1s",
  };
  const admin = (...args) => execFileSync(BIN, args, { env, encoding: "utf8" }).trim();
  admin("migrate");
  const partnerId = admin("partner", "create", "--name", "Node SDK tests");
  const sandboxKey = admin("key", "create", "--partner", partnerId, "--env", "sandbox");
  const liveKey = admin("key", "create", "--partner", partnerId, "--env", "live");
  admin("partner", "credit", partnerId, "--amount", "200");
  const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--mode", "development"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs = [];
  const listen = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready:\n${logs.join("\n")}`)), 30_000);
    child.once("exit", (code) => reject(new Error(`server exited ${code}:\n${logs.join("\n")}`)));
    createInterface({ input: child.stderr }).on("line", (line) => {
      logs.push(line);
      try {
        const log = JSON.parse(line);
        if (log.fields?.message === "Oytel API ready") {
          clearTimeout(timer);
          resolve(log.fields.listen);
        }
      } catch {
        // Not JSON: kept in the logs.
      }
    });
  });
  return {
    baseUrl: `http://${listen}`,
    partnerId,
    sandboxKey,
    liveKey,
    logs,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PNG's signature and the start of its header chunk: a real image, not an error page. */
export function isPng(bytes) {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return (
    signature.every((b, i) => bytes[i] === b) &&
    Buffer.from(bytes.subarray(12, 16)).toString("latin1") === "IHDR"
  );
}

/** The text of the QR code in a PNG image. */
export async function decodeQr(bytes) {
  const { PNG } = await import("pngjs");
  const jsQR = (await import("jsqr")).default;
  const image = PNG.sync.read(Buffer.from(bytes));
  const code = jsQR(new Uint8ClampedArray(image.data), image.width, image.height);
  if (code === null) throw new Error("no QR code in the image");
  return code.data;
}
