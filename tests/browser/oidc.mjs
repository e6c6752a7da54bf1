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

try {
  if (MODE === "cli") {
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
    }
  }
} catch (e) {
  result.error = String(e && e.stack || e);
  result.at = page.url();
  try { result.page = (await page.textContent("body")).slice(0, 2000); } catch { /* none */ }
}
await browser.close();
console.log(`result ${JSON.stringify(result)}`);
