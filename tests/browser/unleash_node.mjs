// The real Unleash Node SDK (unleash-client, which evaluates with its own JavaScript engine,
// not Yggdrasil) against wavegate's Unleash client API, compared context by context with
// wavegate's own OFREP answers (issue 21, item 2: the Node SDK beside the Python one).
//
// usage: node unleash_node.mjs URL SERVER_SDK_TOKEN CLIENT_SDK_TOKEN N_CONTEXTS
//
// Prints one line per flag with the agreement count, then "N contexts, M mismatches"; exits 1
// on any mismatch, if the SDK never loads the flags, or if a flag is on for all or none.
import { startUnleash, InMemStorageProvider } from "unleash-client";

const [url, sdkToken, clientToken, nText] = process.argv.slice(2);
const n = Number(nText);
if (!url || !sdkToken || !clientToken || !(n > 0)) {
  console.error("usage: node unleash_node.mjs URL SERVER_SDK_TOKEN CLIENT_SDK_TOKEN N_CONTEXTS");
  process.exit(2);
}

const timeout = setTimeout(() => {
  console.log("the SDK never loaded the flags");
  process.exit(1);
}, 30_000);
const client = await startUnleash({
  url: url + "/api",
  appName: "wavegate-it",
  instanceId: "it-node",
  customHeaders: { Authorization: sdkToken },
  refreshInterval: 1000,
  disableMetrics: true,
  storageProvider: new InMemStorageProvider(),
});
clearTimeout(timeout);

async function ofrepBulk(context) {
  const resp = await fetch(url + "/ofrep/v1/evaluate/flags", {
    method: "POST",
    headers: { Authorization: "Bearer " + clientToken, "Content-Type": "application/json" },
    body: JSON.stringify({ context }),
  });
  const text = await resp.text();
  if (resp.status !== 200) throw new Error(`OFREP answered ${resp.status}: ${text.slice(0, 200)}`);
  return Object.fromEntries(JSON.parse(text).flags.map((f) => [f.key, f]));
}

// A seeded generator (mulberry32), so the contexts repeat run to run.
let seed = 20261204;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(random() * xs.length)];

const countries = ["NO", "SE", "DK", "DE", "KP", "US"];
const plans = ["pro", "team", "free"];
const checks = { rollout: [0, 0], colour: [0, 0], nordic: [0, 0], "beta-banner": [0, 0], launch: [0, 0] };
const onCounts = Object.fromEntries(Object.keys(checks).map((k) => [k, 0]));
const mismatches = [];
for (let i = 0; i < n; i++) {
  const props = { country: pick(countries), plan: pick(plans) };
  if (random() < 0.8) props.age = String(12 + Math.floor(random() * 69));
  const ctxW = { ...props };
  const ctxU = { properties: { ...props } };
  // Always a user or a session id: without either, `default` stickiness draws at random.
  if (random() < 0.9) {
    const uid = random() < 0.95 ? `user-${Math.floor(random() * 1e9)}` : pick(["user-3", "user-7"]);
    ctxW.targetingKey = uid;
    ctxU.userId = uid;
  } else {
    const sid = `session-${Math.floor(random() * 1e9)}`;
    ctxW.sessionId = sid;
    ctxU.sessionId = sid;
  }
  const served = await ofrepBulk(ctxW);
  for (const key of Object.keys(checks)) {
    let mine;
    let theirs;
    if (key === "colour") {
      mine = client.getVariant(key, ctxU).name;
      theirs = served[key].variant;
    } else {
      mine = client.isEnabled(key, ctxU);
      theirs = served[key].value === true;
      onCounts[key] += theirs ? 1 : 0;
    }
    checks[key][mine === theirs ? 0 : 1] += 1;
    if (mine !== theirs && mismatches.length < 10) {
      mismatches.push(`${key} for ${JSON.stringify(ctxU)}: SDK ${mine}, OFREP ${theirs}`);
    }
  }
}
client.destroy();
let total = 0;
for (const [key, [agree, disagree]] of Object.entries(checks)) {
  const on = key === "colour" ? "" : `, on for ${onCounts[key]}`;
  console.log(`${key}: ${agree} agree, ${disagree} disagree${on}`);
  total += disagree;
}
for (const m of mismatches) console.log("mismatch:", m);
console.log(`${n} contexts, ${total} mismatches`);
// Each case must be exercised both ways, or the comparison proves nothing (`launch`, a date
// rule whose date has passed, is on for everyone by design).
for (const key of ["rollout", "nordic", "beta-banner"]) {
  if (!(onCounts[key] > 0 && onCounts[key] < n)) {
    console.log(`${key} was on for ${onCounts[key]} of ${n} contexts: not a real test`);
    process.exit(1);
  }
}
process.exit(total ? 1 : 0);
