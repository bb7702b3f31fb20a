// Full-page screenshot of a local HTML file in headless Chromium, over the DevTools
// protocol (no npm packages: Node 20's WebSocket behind --experimental-websocket).
//
//   node --experimental-websocket scripts/screenshot.mjs PAGE.html OUT.png [WIDTH]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

const [page, out, width = "800"] = process.argv.slice(2);
if (!page || !out) {
  console.error("usage: screenshot.mjs PAGE.html OUT.png [WIDTH]");
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), "mailout-chromium-"));
const chromium = spawn("chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--hide-scrollbars", `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
], { stdio: "ignore" });

try {
  // Chromium writes its port to DevToolsActivePort once it listens.
  const portFile = join(profile, "DevToolsActivePort");
  for (let i = 0; i < 200 && !existsSync(portFile); i++) await delay(50);
  const port = readFileSync(portFile, "utf8").split("\n")[0];
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.type === "page");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  let next = 0;
  const pending = new Map();
  const events = [];
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    } else if (msg.method) {
      events.push(msg.method);
    }
  };
  const call = (method, params = {}) => new Promise((ok, fail) => {
    const id = ++next;
    pending.set(id, (msg) => (msg.error ? fail(new Error(msg.error.message)) : ok(msg.result)));
    ws.send(JSON.stringify({ id, method, params }));
  });

  await call("Page.enable");
  await call("Emulation.setDeviceMetricsOverride", {
    width: Number(width), height: 800, deviceScaleFactor: 1, mobile: Number(width) < 600,
  });
  await call("Page.navigate", { url: "file://" + resolve(page) });
  for (let i = 0; i < 200 && !events.includes("Page.loadEventFired"); i++) await delay(25);
  const { cssContentSize } = await call("Page.getLayoutMetrics");
  const shot = await call("Page.captureScreenshot", {
    format: "png",
    captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: Number(width), height: Math.ceil(cssContentSize.height), scale: 1 },
  });
  writeFileSync(out, Buffer.from(shot.data, "base64"));
  ws.close();
} finally {
  chromium.kill();
  await delay(100);
  rmSync(profile, { recursive: true, force: true });
}
