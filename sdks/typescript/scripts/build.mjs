// Builds dist/esm (ES modules) and dist/cjs (CommonJS), each with its .d.ts, with tsc.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";

const tsc = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
const run = (...args) => execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: "inherit" });
run("-p", "tsconfig.json");
run("-p", "tsconfig.json", "--module", "CommonJS", "--moduleResolution", "Node10", "--outDir", "dist/cjs");
for (const [dir, type] of [["esm", "module"], ["cjs", "commonjs"]]) {
  mkdirSync(new URL(`../dist/${dir}`, import.meta.url), { recursive: true });
  writeFileSync(new URL(`../dist/${dir}/package.json`, import.meta.url), JSON.stringify({ type }) + "\n");
}
