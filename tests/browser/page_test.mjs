// The page of `paligemma serve` in a real browser (headless Chromium driven by playwright-core): upload an
// image through the file input, run "detect", and check that the answer streams into the page and that its
// boxes are drawn on the canvas. The expected answer is what `paligemma generate --json` gives for the same
// image, prompt and token limit (the server promises the CLI's tokens).
//
// usage: node page_test.mjs PALIGEMMA_BINARY FIXTURES_DIR CHROMIUM
// Starts the server on a free loopback port and stops it; exits 0 when every check passes.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";

const [BIN, FIX, CHROMIUM] = process.argv.slice(2);
// The model, image and objects: the tiny random model answers this request with two valid boxes
// (any model whose detect answer holds a valid box works here).
const MODEL = path.join(FIX, "models", "pg2_f32");
const IMAGE = path.join(FIX, "images", "png", "rgb_300x201.png");  // a PNG
const OBJECTS = "person";
const MAX_TOKENS = 64;  // what the page asks for
const WAIT_MS = 60000;

let passes = 0, failures = 0;
function check(name, condition, detail = "") {
  if (condition) passes++;
  else { failures++; console.log(`FAIL: ${name} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`); }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startServer(port) {
  const proc = spawn(BIN, ["serve", "--model", MODEL, "--port", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) return { proc, stderr: () => stderr };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill("SIGTERM");
  throw new Error(`server did not start: ${stderr}`);
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.on("exit", (code, signal) => resolve(code ?? signal));
    proc.kill("SIGTERM");
  });
}

const expected = JSON.parse(execFileSync(BIN, ["generate", "--model", MODEL, "--image", IMAGE, "--prompt",
  `detect ${OBJECTS}`, "--max-tokens", String(MAX_TOKENS), "--json"]).toString());
const expectedBoxes = (expected.objects || []).filter((o) => o.valid);
if (expectedBoxes.length === 0) {
  console.log(`FAIL: the CLI's answer has no valid box, so the test cannot check drawing: ${expected.text}`);
  process.exit(1);
}

const port = await freePort();
const server = await startServer(port);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/`);

  await page.setInputFiles("#file", IMAGE);
  await page.waitForFunction(() => !document.getElementById("run").disabled, null, { timeout: WAIT_MS });
  await page.selectOption("#task", "detect");
  await page.fill("#arg", OBJECTS);
  // Every text the output shows while the answer streams in. Chromium updates a lone text child in place
  // (a characterData change), so each earlier text is the record's oldValue: reading the node when the
  // callback runs would see only the latest text when several tokens arrive in one network chunk.
  await page.evaluate(() => {
    window.shownTexts = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "characterData") window.shownTexts.push(r.oldValue);
        for (const n of r.addedNodes) window.shownTexts.push(n.textContent);
      }
    }).observe(document.getElementById("output"),
               { childList: true, subtree: true, characterData: true, characterDataOldValue: true });
  });
  await page.click("#run");
  await page.waitForFunction(() => document.getElementById("canvas").dataset.boxes !== undefined &&
                                   !document.getElementById("run").disabled, null, { timeout: WAIT_MS });

  const state = await page.evaluate(() => ({ output: document.getElementById("output").textContent,
                                             error: document.getElementById("error").textContent,
                                             boxes: document.getElementById("canvas").dataset.boxes,
                                             shown: window.shownTexts }));
  check("no error shown", state.error === "", state.error);
  check("final text is the CLI's", state.output === expected.text, { page: state.output, cli: expected.text });
  const streamed = [...new Set(state.shown.filter((t) => t !== ""))];
  // Every text shown on the way is a beginning of the final one. How many there are depends on timing: the
  // server sends one event per token, but the text of the tokens decoded since its last write rides on the
  // newest one, and the tiny model can finish before the first write (per-token events: server_test.py).
  check("streamed text only grows toward the answer",
        streamed.length >= 1 && streamed.every((t) => expected.text.startsWith(t)), streamed);
  check("one drawn box per valid object", state.boxes === String(expectedBoxes.length),
        { drawn: state.boxes, expected: expectedBoxes.length });

  // On the canvas: each box's left edge, halfway down, has the box's colour where the image had another
  // colour; a pixel inside the box keeps the image's colour (boxes are outlines). Boxes are in the
  // original image's pixels, as the CLI gives them.
  const pixels = await page.evaluate(async (boxes) => {
    const canvas = document.getElementById("canvas");
    const drawn = canvas.getContext("2d", { willReadFrequently: true });
    const original = document.createElement("canvas");
    original.width = canvas.width; original.height = canvas.height;
    const octx = original.getContext("2d", { willReadFrequently: true });
    const img = new Image();
    const file = document.getElementById("file").files[0];
    img.src = URL.createObjectURL(file);
    await img.decode();
    octx.drawImage(img, 0, 0);
    const at = (ctx, x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
    return { size: [canvas.width, canvas.height], colors: COLORS, boxes: boxes.map(([x0, y0, x1, y1]) => {
      const ym = Math.floor((y0 + y1) / 2), xm = Math.floor((x0 + x1) / 2);
      return { edge: at(drawn, x0, ym), edgeBefore: at(octx, x0, ym), inside: at(drawn, xm, ym), insideBefore: at(octx, xm, ym) };
    }) };
  }, expectedBoxes.map((o) => o.box));
  const png = fs.readFileSync(IMAGE);  // width and height are the first fields of the IHDR chunk
  check("canvas has the image's size", pixels.size[0] === png.readUInt32BE(16) && pixels.size[1] === png.readUInt32BE(20),
        pixels.size);
  pixels.boxes.forEach((p, i) => {
    const color = pixels.colors[i % pixels.colors.length];
    check(`box ${i} edge drawn in its colour`, JSON.stringify(p.edge) === JSON.stringify(color) &&
          JSON.stringify(p.edgeBefore) !== JSON.stringify(color), p);
    check(`box ${i} inside untouched`, JSON.stringify(p.inside) === JSON.stringify(p.insideBefore), p);
  });
  check("no script errors on the page", pageErrors.length === 0, pageErrors);
} finally {
  await browser.close();
  const code = await stopServer(server.proc);
  check("server stopped cleanly", code === 0, { code, stderr: server.stderr() });
}

console.log(`${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
