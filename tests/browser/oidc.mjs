// Signs people in to wavegate through the real OpenID provider (oidc_provider.mjs) in
// headless Chromium. Run by crates/wavegate/tests/it/oidc.rs with:
//
//   MODE=dashboard  WG_URL, USER: the dashboard's "Sign in with your identity provider", the
//                   provider's pages, back to the dashboard; then what the session may do
//                   (whoami, a change without and with the CSRF token), and sign-out.
//   MODE=refused    WG_URL, USER: a person whose groups map to no role is turned away.
//   MODE=review     WG_URL, USER, CHANGE: signed in, the change request waiting for my review,
//                   its diff, approved from the dashboard.
//   MODE=cli        LOGIN_URL, USER: the address `wavegate login` printed, through the
//                   provider's pages to the CLI's loopback address.
//
// Prints one line `result <json>`.
import { launch } from "./launch.mjs";

const { MODE, WG_URL, USER, LOGIN_URL } = process.env;
const browser = await launch();
const page = await browser.newPage();
const result = {};
// Nothing but wavegate and the identity provider is reached; nothing goes wrong in the console
// (wavegate's answers the walk expects to be refused are none).
const external = [];
const consoleErrors = [];
// Only what wavegate's pages do counts (the provider's own sign-in pages load what they like).
const onWavegate = () => WG_URL && page.url().startsWith(WG_URL);
page.on("request", (r) => {
  const u = r.url();
  if (onWavegate() && !u.startsWith("http://127.0.0.1:") && !u.startsWith("data:")) external.push(u);
});
page.on("console", (m) => { if (onWavegate() && m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => { if (onWavegate()) consoleErrors.push(String(e)); });

// The provider's development sign-in: any password; then any confirmation it asks.
async function signInAtProvider(until) {
  await page.waitForSelector("input[name=login]", { timeout: 20000 });
  await page.fill("input[name=login]", USER);
  await page.fill("input[name=password]", "any");
  await Promise.all([page.waitForNavigation({ timeout: 20000 }), page.click("button[type=submit]")]);
  for (let i = 0; i < 3 && !until(page.url()); i++) {
    const submit = await page.$("button[type=submit]");
    if (!submit) break;
    await Promise.all([page.waitForNavigation({ timeout: 20000 }), submit.click()]);
  }
}

// Signs in to the dashboard through the provider.
async function dashboardSignIn(hash) {
  await page.goto(`${WG_URL}/${hash || ""}`);
  await page.waitForSelector("#signin-oidc-link", { state: "visible", timeout: 20000 });
  await Promise.all([page.waitForNavigation(), page.click("#signin-oidc-link")]);
  await signInAtProvider((u) => u.startsWith(WG_URL));
  await page.waitForSelector("#session:not([hidden])", { timeout: 20000 });
}

// Confirms the open dialog (with `text` in its text field) and returns the alert it leads to.
async function confirm(text) {
  await page.evaluate(() => { document.getElementById("alert").textContent = ""; });
  if (text !== undefined) await page.fill("#confirm-reason", text);
  await page.click("#confirm-ok");
  await page.waitForFunction(() => document.getElementById("alert").textContent.length > 0, null, { timeout: 20000 });
  return page.locator("#alert").textContent();
}

async function go(hash, selector) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.locator(selector).first().waitFor({ timeout: 20000 });
}

// A whole release, step by step (MODE=walk-<step>), each as the person whose part it is.
const WALK_PLAN = (first) => `name: walk
release: { name: checkout, version: 4.0.0, risk: medium }
flag: checkout
new_variant: "on"
control_variant: "off"
environment: prod
owners: { requester: alice, approvers: [group:cab] }
guardrails:
  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 100, action: rollback }
runbook: { errors: Check the error dashboard. }
waves: [{ exposure: ${first} }, { exposure: 25%, promotion: approval }, { exposure: 60%, hold: 1h }, { exposure: 100% }]
`;

try {
  if (MODE === "walk-setup") {
    // ed, an editor: a segment, a flag, and a plan (one lint error shown, fixed, applied).
    await dashboardSignIn("#/flags");
    await go("#/flags", "#segment-new-key");
    await page.fill("#segment-new-key", "pilots");
    await page.fill("#segment-description", "pilot users");
    await page.fill("#segment-keys", "user-1\nuser-2");
    await page.waitForFunction(() => document.getElementById("segment-yaml").value.includes("- user-2"), null, { timeout: 20000 });
    await page.click("#segment-new-save");
    result.segment = await confirm("pilot users for checkout v4");
    await page.fill("#flag-new-key", "checkout");
    await page.fill("#flag-description", "the new checkout");
    await page.check("#flag-enabled-prod");
    await page.click("#flag-prod-add-rule");
    await page.fill("#flag-prod-r0-name", "pilots");
    await page.locator('#flag-prod-r0-segment option[value="pilots"]').waitFor({ state: "attached", timeout: 20000 });
    await page.selectOption("#flag-prod-r0-segment", "pilots");
    await page.selectOption("#flag-prod-r0-serve", "off");
    await page.click("#flag-save");
    result.flag = await confirm("checkout v4 behind a flag");
    await go("#/plans", "#plan-yaml");
    await page.fill("#plan-traffic", "200");
    await page.fill("#plan-yaml", WALK_PLAN("60%"));
    await page.locator("#plan-finding-list .v-fail").first().waitFor({ timeout: 20000 });
    result.lint_error = await page.locator("#plan-finding-list .v-fail").first().textContent();
    await page.fill("#plan-yaml", WALK_PLAN("10%"));
    await page.waitForFunction(() => document.getElementById("plan-verdict")?.textContent.startsWith("No errors"), null, { timeout: 20000 });
    await page.evaluate(() => { document.getElementById("alert").textContent = ""; });
    await page.click("#plan-apply");
    await page.waitForFunction(() => document.getElementById("alert").textContent.length > 0, null, { timeout: 20000 });
    result.plan = await page.locator("#alert").textContent();
  } else if (MODE === "walk-sign") {
    // bob, an approver: signs the plan's scorecard before it starts.
    await dashboardSignIn("#/plans/walk");
    await go("#/plans/walk", "#sc-baseline-green");
    await page.click("#sc-baseline-green");
    result.signed = await confirm("https://wiki.example.com/checkout-v4-baseline");
    await page.waitForSelector('#scorecard tr[data-item="baseline"][data-status="green"]', { timeout: 20000 });
  } else if (MODE === "walk-start") {
    // alice, a releaser: starts it from the Plans page.
    await dashboardSignIn("#/plans");
    await go("#/plans", "#start-walk");
    await page.click("#start-walk");
    result.started = await confirm("checkout v4 to prod");
  } else if (MODE === "walk-approve") {
    // bob, an approver (group cab): sees wave 2 reached and his sign-off, approves the gate.
    await dashboardSignIn();
    await go(`#/rollouts/${process.env.ROLLOUT}`, "#cmd-approve");
    result.wave_shown = await page.getAttribute("#rollout", "data-wave");
    result.baseline = await page.getAttribute('#scorecard tr[data-item="baseline"]', "data-status");
    await page.click("#cmd-approve");
    result.approved = await confirm("wave 1 looked healthy");
    await page.waitForSelector('#rollout[data-wave="3"]', { timeout: 20000 });
    result.wave_after = await page.getAttribute("#rollout", "data-wave");
  } else if (MODE === "walk-end") {
    // alice: the automatic rollback shown, feedback recorded, the report read.
    await dashboardSignIn();
    await go(`#/rollouts/${process.env.ROLLOUT}`, '#rollout[data-state="rolled_back"]');
    result.reason = await page.locator("#state-reason").textContent();
    await page.fill("#fb-category", "checkout");
    await page.fill("#fb-cohort", "pilots");
    await page.selectOption("#fb-sentiment", "negative");
    await page.fill("#fb-text", "errors at payment");
    await page.evaluate(() => { document.getElementById("alert").textContent = ""; });
    await page.click("#fb-submit");
    await page.waitForFunction(() => document.getElementById("alert").textContent.length > 0, null, { timeout: 20000 });
    result.feedback = await page.locator("#alert").textContent();
    await page.click("#show-report");
    await page.locator("#report").waitFor({ timeout: 20000 });
    result.report = await page.locator("#report").textContent();
  } else if (MODE === "cli") {
    await page.goto(LOGIN_URL);
    await signInAtProvider((u) => u.startsWith("http://127.0.0.1") && u.includes("/callback?"));
    result.url = page.url().split("?")[0];
    result.text = (await page.textContent("body")).trim();
  } else {
    await page.goto(WG_URL);
    await page.waitForSelector("#signin-oidc-link", { state: "visible", timeout: 20000 });
    result.issuer_shown = await page.textContent("#signin-oidc-issuer");
    await Promise.all([page.waitForNavigation(), page.click("#signin-oidc-link")]);
    await signInAtProvider((u) => u.startsWith(WG_URL));
    if (MODE === "review") {
      await page.waitForSelector("#session:not([hidden])", { timeout: 20000 });
      await page.goto(`${WG_URL}/#/changes`);
      const link = page.locator(`#changes-mine a[href="#/changes/${process.env.CHANGE}"]`);
      await link.waitFor({ timeout: 20000 });
      await link.click();
      await page.locator("#change-approve").waitFor({ timeout: 20000 });
      result.diff = await page.locator("pre.diff").first().textContent();
      result.apply_note = await page.locator("#note-change-apply").count();
      await page.click("#change-approve");
      await page.click("#confirm-ok");
      await page.waitForSelector("#change[data-state=approved]", { timeout: 20000 });
      result.state = await page.getAttribute("#change", "data-state");
      // The go/no-go scorecard: an approver signs an item with its evidence.
      await page.goto(`${WG_URL}/#/rollouts/${process.env.ROLLOUT}`);
      await page.locator("#sc-baseline-green").waitFor({ timeout: 20000 });
      await page.click("#sc-baseline-green");
      await page.fill("#confirm-reason", "https://wiki.example.com/baseline");
      await page.click("#confirm-ok");
      await page.waitForSelector('#scorecard tr[data-item="baseline"][data-status="green"]', { timeout: 20000 });
      result.signed = await page.locator('#scorecard tr[data-item="baseline"]').textContent();
    } else if (MODE === "refused") {
      result.url = page.url().split("?")[0];
      result.text = (await page.textContent("body")).trim();
    } else {
      await page.waitForSelector("#session:not([hidden])", { timeout: 20000 });
      result.who = await page.textContent("#who");
      result.cookies = (await page.context().cookies()).map((c) => ({
        name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite,
      }));
      result.whoami = await page.evaluate(async () => (await fetch("/api/v1/whoami")).json());
      if (process.env.ROLLOUT) {
        // What my roles allow on a rollout: a releaser pauses; rejecting is the approver's.
        await page.goto(`${WG_URL}/#/rollouts/${process.env.ROLLOUT}`);
        await page.locator("#cmd-pause").waitFor({ timeout: 20000 });
        result.pause_disabled = await page.locator("#cmd-pause").isDisabled();
        result.reject_disabled = await page.locator("#cmd-reject").isDisabled();
        result.reject_note = await page.locator("#note-reject").textContent();
        // Plans: starting one already rolling out is refused with the reason; another starts.
        await page.goto(`${WG_URL}/#/plans`);
        const said = async () => {
          await page.waitForFunction(() => /^(Start|p2)/.test(document.getElementById("alert").textContent), null, { timeout: 20000 });
          const t = await page.locator("#alert").textContent();
          await page.evaluate(() => { document.getElementById("alert").textContent = ""; });
          return t;
        };
        await page.locator("#start-p").waitFor({ timeout: 20000 });
        await page.click("#start-p");
        await page.click("#confirm-ok");
        result.start_refused = await said();
        await page.click("#start-p2");
        await page.fill("#confirm-reason", "pilot in prod");
        await page.click("#confirm-ok");
        result.started = await said();
      }
      // A change without the CSRF token is refused; with it, the role decides.
      result.pause_without_csrf = await page.evaluate(async () => {
        const r = await fetch("/api/v1/freeze", { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{\"reason\":\"x\"}" });
        return { status: r.status, body: await r.json() };
      });
      result.feedback_with_csrf = await page.evaluate(async (csrf) => {
        const r = await fetch("/api/v1/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ release: "checkout 1.0.0", category: "ux", cohort: "pilots", sentiment: "positive", text: "signed in" }),
        });
        return r.status;
      }, result.whoami.csrf);
      await page.click("#signout");
      await page.waitForSelector("#signin:not([hidden])", { timeout: 20000 });
      result.whoami_after = await page.evaluate(async () => (await fetch("/api/v1/whoami")).status);
      await page.waitForSelector("#provider-logout:not([hidden])", { timeout: 20000 });
      result.provider_logout = await page.getAttribute("#provider-logout-link", "href");
    }
  }
} catch (e) {
  result.error = String(e && e.stack || e);
  result.at = page.url();
  try { result.page = (await page.textContent("body")).slice(0, 2000); } catch { /* none */ }
}
result.external = external;
result.console_errors = consoleErrors;
await browser.close();
console.log(`result ${JSON.stringify(result)}`);
