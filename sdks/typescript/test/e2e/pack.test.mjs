// The package as a partner gets it: `npm pack`, installed into a fresh project, runs the
// quick start of the README (the API documentation's example) against a real server, from
// ES modules and from CommonJS. Only the placeholder key and its environment are replaced.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { decodeQr, missing, startServer } from "./server.mjs";

const skip = missing();
const root = new URL("../..", import.meta.url).pathname;
let server;
let project;

before(async () => {
  if (skip) return;
  server = await startServer();
  project = mkdtempSync(join(tmpdir(), "oytel-partner-"));
});

after(async () => {
  await server?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

/** The README's quick start: the first ```js block. */
function quickStart() {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const block = readme.match(/```js\n([\s\S]*?)```/);
  assert.ok(block, "the README has a quick start");
  return block[1];
}

test("the packed tarball installs and runs the documented example", { skip }, async () => {
  const npm = (args, cwd) =>
    execFileSync("npm", args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", project], root));
  const tarball = join(project, packed[0].filename);
  const files = packed[0].files.map((f) => f.path);
  assert.ok(files.includes("dist/esm/index.js") && files.includes("dist/cjs/index.d.ts"), files.join(" "));
  assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/")), "only the build ships");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "partner-app", private: true, type: "module" }));
  npm(["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], project);

  const example = quickStart()
    .replace("'your-api-key'", `'${server.sandboxKey}'`)
    .replace("environment: 'production'", "environment: 'sandbox'");
  writeFileSync(join(project, "example.mjs"), example);
  const env = { ...process.env, OYTEL_BASE_URL: server.baseUrl };
  const printed = execFileSync(process.execPath, ["example.mjs"], { cwd: project, env, encoding: "utf8" });
  const url = printed.match(/^QR Code: (\S+)$/m)?.[1];
  assert.ok(url?.startsWith(server.baseUrl), printed);
  const image = new Uint8Array(await (await fetch(url)).arrayBuffer());
  assert.match(await decodeQr(image), /^LPA:1\$/);

  const cjs = `const { OytelClient, NotFoundError } = require("oytel-esim-sdk");
const client = new OytelClient({ apiKey: process.argv[2] });
client.plans.get("eu-roam-50").then((plan) => console.log(plan.id, client.environment));`;
  writeFileSync(join(project, "check.cjs"), cjs);
  const out = execFileSync(process.execPath, ["check.cjs", server.sandboxKey], { cwd: project, env, encoding: "utf8" });
  assert.equal(out.trim(), "eu-roam-50 sandbox");
});
