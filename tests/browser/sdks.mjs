// Runs browser SDKs that no one here wrote against wavegate, in Debian's headless Chromium,
// from a page on another origin (so every request crosses CORS):
//   - unleash-proxy-client (Unleash's browser SDK) against /api/frontend: its toggles arrive,
//     and its re-fetches (which send back the last ETag) are answered 304;
//   - the OpenFeature web SDK with the OFREP web provider (polling) against bulk OFREP: the
//     flags arrive, and with a date rule on currentTime in the environment its polls are
//     answered 304, with no ConfigurationChanged event, while no answer can change.
// Run by crates/wavegate/tests/it/browser_sdks.rs, which starts the server and passes:
//   WAVEGATE_URL   the server
//   CLIENT_TOKEN   a client-sdk token for prod
// Prints one line per expectation; exits non-zero on the first that fails.
import { launch } from "./launch.mjs";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("WAVEGATE_URL");
const token = env("CLIENT_TOKEN");
const TIMEOUT = 20_000;
const here = dirname(fileURLToPath(import.meta.url));

function check(cond, msg) {
  if (!cond) throw new Error(`expectation failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

// The page's own origin: the page and the SDKs' files from node_modules, nothing else.
const page = `<!doctype html>
<meta charset="utf-8">
<script type="importmap">{"imports": {
  "@openfeature/core": "/node_modules/@openfeature/core/dist/esm/index.js",
  "@openfeature/web-sdk": "/node_modules/@openfeature/web-sdk/dist/esm/index.js",
  "@openfeature/ofrep-core": "/node_modules/@openfeature/ofrep-core/index.esm.js",
  "@openfeature/ofrep-web-provider": "/node_modules/@openfeature/ofrep-web-provider/index.esm.js"
}}</script>
<script src="/node_modules/unleash-proxy-client/build/main.min.js"></script>
<script type="module">
  import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
  import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
  const params = new URLSearchParams(location.search);
  const wavegate = params.get("wavegate");
  const token = params.get("token");
  window.results = { unleash: null, ofrep: null, changed: 0, errors: [] };
  try {
    const client = new unleash.UnleashClient({
      url: wavegate + "/api/frontend", clientKey: token, appName: "browser-test",
      refreshInterval: 1, disableMetrics: true, context: { userId: "user-3", properties: { country: "NO", age: "30" } },
    });
    client.on("error", (e) => window.results.errors.push("unleash: " + e));
    client.on("ready", () => {
      window.results.unleash = {
        toggles: client.getAllToggles().map((t) => t.name).sort(),
        nordic: client.isEnabled("nordic"),
        colour: client.getVariant("colour").name,
      };
    });
    await client.start();
  } catch (e) { window.results.errors.push("unleash: " + e); }
  try {
    await OpenFeature.setContext({ targetingKey: "user-3", country: "NO", age: 30 });
    OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => { window.results.changed += 1; });
    await OpenFeature.setProviderAndWait(new OFREPWebProvider({
      // Polling, as integrators behind proxies that cut event streams run it (with the
      // default, "sse", it follows the answer's eventStreams and polls not at all).
      baseUrl: wavegate, headers: [["Authorization", "Bearer " + token]], pollInterval: 300,
      changeDetection: "polling",
    }));
    const of = OpenFeature.getClient();
    window.results.ofrep = {
      launch: of.getBooleanValue("launch", false),
      nordic: of.getBooleanValue("nordic", false),
    };
  } catch (e) { window.results.errors.push("ofrep: " + e); }
</script>`;

const served = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    return res.end(page);
  }
  const file = normalize(join(here, path));
  if (!path.startsWith("/node_modules/") || !file.startsWith(join(here, "node_modules"))) {
    res.writeHead(404);
    return res.end();
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": "text/javascript" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((ok) => served.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${served.address().port}`;

const browser = await launch();
let failed = false;
try {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const answers = []; // [path, status] of every answer from wavegate
  tab.on("response", (r) => {
    if (r.url().startsWith(url)) answers.push([new URL(r.url()).pathname, r.status()]);
  });
  const consoleErrors = [];
  tab.on("pageerror", (e) => consoleErrors.push(String(e)));
  await tab.goto(`${origin}/?wavegate=${encodeURIComponent(url)}&token=${encodeURIComponent(token)}`);
  check(origin !== new URL(url).origin, `the page (${origin}) is on another origin than wavegate (${url})`);
  await tab.waitForFunction(() => window.results && window.results.unleash && window.results.ofrep, null, { timeout: TIMEOUT });
  const count = (path, status) => answers.filter(([p, s]) => p === path && s === status).length;
  // Several polls of each: unleash-proxy-client every second, the OFREP provider every 300 ms.
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline && (count("/api/frontend", 304) < 2 || count("/ofrep/v1/evaluate/flags", 304) < 3)) {
    await tab.waitForTimeout(100);
  }
  const results = await tab.evaluate(() => window.results);
  console.log(`answers: ${JSON.stringify(answers)}`);
  console.log(`results: ${JSON.stringify(results)}`);
  check(results.errors.length === 0, `no SDK reported an error (${results.errors.join("; ")})`);
  check(consoleErrors.length === 0, `no page error (${consoleErrors.join("; ")})`);
  // unleash-proxy-client
  check(results.unleash.toggles.includes("nordic") && results.unleash.toggles.includes("colour"),
    `unleash-proxy-client got the toggles on for its context: ${results.unleash.toggles}`);
  check(results.unleash.nordic === true, "unleash-proxy-client: nordic is on for a Norwegian adult");
  check(count("/api/frontend", 200) >= 1, "unleash-proxy-client's first fetch was answered 200");
  check(count("/api/frontend", 304) >= 2, "its re-fetches, sending the ETag back, were answered 304");
  // OpenFeature web SDK + OFREP web provider
  check(results.ofrep.nordic === true, "the OFREP web provider: nordic is on");
  check(results.ofrep.launch === true, "the OFREP web provider: launch (a date rule, date passed) is on");
  check(count("/ofrep/v1/evaluate/flags", 200) === 1, "the provider's first bulk evaluation was answered 200, and only it");
  check(count("/ofrep/v1/evaluate/flags", 304) >= 3, "its polls were answered 304 although a date rule is present");
  const after = await tab.evaluate(() => window.results.changed);
  check(after === 0, `no ConfigurationChanged event fired while nothing changed (${after})`);
} catch (e) {
  failed = true;
  console.error(String(e && e.stack || e));
} finally {
  await browser.close();
  served.close();
}
process.exit(failed ? 1 : 0);
