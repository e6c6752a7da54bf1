// Drives the wavegate dashboard in a real headless Chromium (Debian's /usr/bin/chromium).
// Run by crates/wavegate/tests/it/dashboard.rs, which starts the server and a rollout waiting
// at an approval gate, and passes:
//   WAVEGATE_URL      the server
//   ADMIN_TOKEN       a token for API-side changes (principal admin, the requester)
//   APPROVER_TOKEN    the token the browser signs in with (principal bob, an approver)
//   REQUESTER_TOKEN   the requester's token (alice), who must not be able to approve
//   ROLLOUT_ID        the rollout waiting for approval
//   SCREENSHOT        where to write the rollout page's screenshot
// Prints one line per step; exits non-zero on the first failed expectation.
import { launch } from "./launch.mjs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("WAVEGATE_URL");
const admin = env("ADMIN_TOKEN");
const approver = env("APPROVER_TOKEN");
const rollout = env("ROLLOUT_ID");
const screenshot = env("SCREENSHOT");
const requester = env("REQUESTER_TOKEN");
const TIMEOUT = 20_000;

function check(cond, msg) {
  if (!cond) throw new Error(`expectation failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

async function apiCall(method, path, body) {
  const resp = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path} → ${resp.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

const browser = await launch();
let failed = false;
const consoleErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // 1. The page loads and asks for a token.
  await page.goto(url + "/", { timeout: TIMEOUT });
  await page.locator("#signin").waitFor({ state: "visible", timeout: TIMEOUT });
  check(true, "dashboard loads and shows the sign-in form");

  // 2. Sign in with the keyboard only.
  await page.locator("#token").focus();
  await page.keyboard.type(approver);
  await page.keyboard.press("Enter");
  await page.locator("#who").filter({ hasText: "bob" }).waitFor({ timeout: TIMEOUT });
  check(await page.evaluate(() => sessionStorage.getItem("wavegate.token") !== null), "token kept in sessionStorage");
  check(await page.evaluate(() => localStorage.length === 0), "nothing in localStorage");
  await page.locator("#live.on").waitFor({ timeout: TIMEOUT });
  check(true, "live stream connected");

  // 3. Rollouts are listed and filterable.
  await page.locator(`#rollouts tr[data-rollout="${rollout}"]`).waitFor({ timeout: TIMEOUT });
  check(true, `rollout ${rollout} listed`);
  await page.selectOption("#filter-environment", "prod");
  await page.locator(`#rollouts tr[data-rollout="${rollout}"]`).waitFor({ timeout: TIMEOUT });
  await page.selectOption("#filter-state", "running");
  await page.locator(`#rollouts tr[data-rollout="${rollout}"]`).waitFor({ timeout: TIMEOUT });
  check((await page.locator("#rollout-count").textContent()).startsWith("1 of"), "filters by environment and state");
  await page.selectOption("#filter-state", "");

  // 4. A change made through the API appears without a reload.
  await page.evaluate(() => { window.__noReload = "still-here"; });
  await page.click('nav a[data-nav="flags"]');
  await page.locator("#flags").waitFor({ timeout: TIMEOUT });
  const newFlag = `live-${Date.now()}`;
  await apiCall("PUT", `/api/v1/flags/${newFlag}`, {
    description: "made through the API while the page watched",
    variants: { on: true, off: false },
    default: "off",
    environments: { prod: { enabled: true } },
  });
  await page.locator(`#flags tr[data-flag="${newFlag}"]`).waitFor({ timeout: TIMEOUT });
  check(await page.evaluate(() => window.__noReload === "still-here"), "flag made through the API appeared without reload");

  // 5. The flag page shows rules and history; a revert through the API shows up live too.
  await page.click(`#flags tr[data-flag="${newFlag}"] a`);
  await page.locator("#versions").waitFor({ timeout: TIMEOUT });
  await apiCall("PUT", `/api/v1/flags/${newFlag}`, {
    description: "second version",
    variants: { on: true, off: false },
    default: "on",
    environments: { prod: { enabled: true, rules: [{ name: "everyone", serve: "on" }] } },
  });
  await page.locator('#flag[data-version="2"]').waitFor({ timeout: TIMEOUT });
  check((await page.locator("#flag").textContent()).includes("everyone"), "flag page shows the new rule live");
  await page.click("text=diff v1→v2");
  await page.locator("#diff pre").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#diff pre").textContent()).includes("everyone"), "diff shows the change");
  await page.click("#revert-1");
  await page.locator("#confirm[open]").waitFor({ timeout: TIMEOUT });
  await page.fill("#confirm-reason", "browser test: revert");
  await page.click("#confirm-ok");
  await page.locator('#flag[data-version="3"]').waitFor({ timeout: TIMEOUT });
  const head = await apiCall("GET", `/api/v1/flags/${newFlag}`);
  check(head.version === 3 && head.spec.default === "off", "revert from the dashboard wrote v3 = v1's content");

  // 5b. The flag editor: the form and the YAML kept in step both ways, a problem shown at the
  // field it names as it is made, the diff before saving, the reason recorded.
  const yamlHas = (text) => page.waitForFunction((t) => document.getElementById("flag-yaml").value.includes(t), text, { timeout: TIMEOUT });
  // Checks run 300 ms after typing stops: wait for the problem named, not for any problem
  // (an earlier keystroke's may still be shown).
  const problemShown = (text) => page.waitForFunction((t) => document.getElementById("flag-error").textContent.includes(t), text, { timeout: TIMEOUT });
  await page.locator("#flag-enabled-prod").waitFor({ timeout: TIMEOUT });
  await page.uncheck("#flag-enabled-prod");
  await yamlHas("enabled: false");
  check(true, "the form's change shows in the YAML");
  await page.click("#flag-prod-add-rule");
  await page.fill("#flag-prod-r0-name", "pilots");
  await page.click("#flag-prod-r0-add-constraint");
  await page.fill("#flag-prod-r0-c0-attr", "country");
  await page.selectOption("#flag-prod-r0-c0-op", "in");
  await page.fill("#flag-prod-r0-c0-values", "NO, SE");
  await page.selectOption("#flag-prod-r0-mode", "split");
  await page.fill("#flag-prod-r0-split-on", "10%");
  await page.fill("#flag-prod-r0-split-off", "80%");
  await problemShown("must sum to 100%");
  const splitError = await page.locator("#flag-form .field-error").first().textContent();
  check(splitError.includes("100") && await page.locator('#flag-form [data-field="environments.prod.rules[0].split"][aria-invalid="true"]').count() === 1,
    `a split that does not add up is shown at the split as it is typed (${splitError})`);
  await page.fill("#flag-prod-r0-split-off", "90%");
  await page.waitForFunction(() => document.getElementById("flag-error").textContent === "", null, { timeout: TIMEOUT });
  await page.fill("#flag-prod-r0-stickiness", "accountId");
  await yamlHas('- "NO"');
  check((await page.inputValue("#flag-yaml")).includes("stickiness: accountId"), "the rule, its constraint (NO quoted) and its split show in the YAML");
  // Typed YAML fills the form; YAML that does not parse is shown at its line.
  const typed = (await page.inputValue("#flag-yaml")).replace("stickiness: accountId", "stickiness: companyId");
  await page.fill("#flag-yaml", `${typed}  oops: [\n`);
  await problemShown("line ");
  check((await page.locator("#flag-error").textContent()).startsWith("line "), "YAML that does not parse is shown at its line and column");
  await page.fill("#flag-yaml", typed);
  await page.waitForFunction(() => document.getElementById("flag-prod-r0-stickiness")?.value === "companyId", null, { timeout: TIMEOUT });
  check(true, "YAML typed fills the form");
  await page.click("#flag-review");
  const review = await page.locator("#flag-diff pre").textContent();
  check(/^\+\s+enabled: false$/m.test(review) && /^\+\s+split:$/m.test(review) && /^-\s+enabled: true$/m.test(review),
    `the diff against v3 shows before saving (${review.slice(0, 300)})`);
  await page.click("#flag-save");
  await page.fill("#confirm-reason", "browser test: switch off in prod, pilots split");
  await page.click("#confirm-ok");
  await page.locator('#flag[data-version="4"]').waitFor({ timeout: TIMEOUT });
  const versions = await apiCall("GET", `/api/v1/flags/${newFlag}/versions`);
  const v4 = versions[3].spec.environments.prod;
  check(versions[3].reason === "browser test: switch off in prod, pilots split" && v4.enabled === false
    && v4.rules[0].split.on === "10%" && v4.rules[0].constraints[0].values.join() === "NO,SE" && v4.rules[0].stickiness === "companyId",
    `saved as v4 with its reason, as the form and the YAML said (${JSON.stringify(v4)})`);
  await page.locator("#flag-yaml").waitFor({ timeout: TIMEOUT });
  await page.fill("#flag-yaml", (await page.inputValue("#flag-yaml")).replace('default: "off"', "default: nope"));
  await problemShown("nope");
  const refusal = await page.locator("#flag-error").textContent();
  check(refusal.includes("default") && refusal.includes("unknown variant \"nope\"") && await page.locator('#flag-default[aria-invalid="true"]').count() === 1,
    `a field that does not validate is named, at its control (${refusal})`);
  await page.click("#flag-save");
  await page.waitForFunction(() => document.getElementById("flag-error").textContent.startsWith("Not saved"), null, { timeout: TIMEOUT });
  check(await page.locator("#confirm[open]").count() === 0 && (await apiCall("GET", `/api/v1/flags/${newFlag}`)).version === 4,
    "and nothing is saved while it is wrong");
  // 5c. A segment and a flag that uses it, made in the dashboard's forms.
  await page.evaluate(() => { location.hash = "#/flags"; });
  await page.locator("#segment-new-key").waitFor({ timeout: TIMEOUT });
  await page.fill("#segment-new-key", "browser-pilots");
  await page.fill("#segment-description", "pilots");
  await page.fill("#segment-keys", "u1\nu2");
  await page.waitForFunction(() => document.getElementById("segment-yaml").value.includes("- u2"), null, { timeout: TIMEOUT });
  await page.click("#segment-new-save");
  await page.fill("#confirm-reason", "browser test: pilots");
  await page.click("#confirm-ok");
  await page.locator('#segments tr[data-segment="browser-pilots"]').waitFor({ timeout: TIMEOUT });
  // A stored segment picked: changed (v2), then reverted to v1 from its versions (v3).
  const segVersion = async (v) => {
    const deadline = Date.now() + TIMEOUT;
    while ((await apiCall("GET", "/api/v1/segments/browser-pilots")).version !== v) {
      if (Date.now() > deadline) throw new Error(`segment never reached v${v}`);
      await page.waitForTimeout(100);
    }
  };
  await page.selectOption("#segment-open", "browser-pilots");
  await page.locator('#segment-versions tr[data-version="1"]').waitFor({ timeout: TIMEOUT });
  await page.fill("#segment-keys", "u1\nu2\nu3");
  await page.click("#segment-new-save");
  await page.fill("#confirm-reason", "browser test: a third pilot");
  await page.click("#confirm-ok");
  await segVersion(2);
  // The page shows v2 (its refresh after the save has landed) before the segment is picked
  // again; a live refresh that still lands right after the pick redraws the editor, so the pick
  // is repeated until its versions show.
  await page.waitForFunction(() => {
    const row = document.querySelector('#segments tr[data-segment="browser-pilots"]');
    return row && row.textContent.includes("v2");
  }, null, { timeout: TIMEOUT });
  for (let attempt = 1; ; attempt++) {
    await page.selectOption("#segment-open", "browser-pilots");
    try {
      await page.locator("#segment-revert-1").waitFor({ timeout: 5_000 });
      break;
    } catch (e) {
      if (attempt >= 4) throw e;
      await page.selectOption("#segment-open", "");
    }
  }
  await page.click("#segment-revert-1");
  await page.fill("#confirm-reason", "browser test: back to two pilots");
  await page.click("#confirm-ok");
  await segVersion(3);
  const reverted = await apiCall("GET", "/api/v1/segments/browser-pilots");
  check(reverted.spec.keys.join() === "u1,u2", `a segment changed and reverted from its versions in the dashboard (${reverted.spec.keys})`);
  await page.fill("#flag-new-key", "made-in-browser");
  await page.check("#flag-enabled-prod");
  await page.click("#flag-prod-add-rule");
  await page.fill("#flag-prod-r0-name", "pilots");
  await page.locator('#flag-prod-r0-segment option[value="browser-pilots"]').waitFor({ state: "attached", timeout: TIMEOUT });
  await page.selectOption("#flag-prod-r0-segment", "browser-pilots");
  await page.selectOption("#flag-prod-r0-serve", "on");
  await page.click("#flag-save");
  await page.fill("#confirm-reason", "browser test: a flag for the pilots");
  await page.click("#confirm-ok");
  await page.locator('#flag[data-version="1"]').waitFor({ timeout: TIMEOUT });
  const made = await apiCall("GET", "/api/v1/flags/made-in-browser/versions");
  check(made.length === 1 && made[0].reason === "browser test: a flag for the pilots" && made[0].spec.environments.prod.rules[0].segment === "browser-pilots"
    && made[0].spec.environments.prod.rules[0].serve === "on",
    "a segment and a flag using it were made in the dashboard's forms, with their reasons");
  check(!consoleErrors.some((e) => e.includes("status of 4")), "no request was refused on the way");

  // 6a. The requester sees the approve button disabled, with the reason.
  {
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p2 = await other.newPage();
    await p2.goto(`${url}/#/rollouts/${rollout}`);
    await p2.fill("#token", requester);
    await p2.press("#token", "Enter");
    await p2.locator("#cmd-approve").waitFor({ timeout: TIMEOUT });
    check(await p2.locator("#cmd-approve").isDisabled(), "the requester's approve button is disabled");
    check((await p2.locator("#note-approve").textContent()).includes("you requested this rollout"), "and says why");
    await other.close();
  }

  // 6. The rollout page: timeline, guardrails, runbook, audit; approve promotes the gated wave.
  await page.goto(`${url}/#/rollouts/${rollout}`);
  await page.locator("#rollout").waitFor({ timeout: TIMEOUT });
  await page.locator("#cmd-approve").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#timeline li").count()) >= 2, "wave timeline drawn");
  check((await page.locator("#rollout-audit tbody tr").count()) >= 1, "audit trail shown");
  check((await page.locator("#rollout").textContent()).includes("Runbook"), "runbook section shown");
  check((await page.locator("#scorecard tbody tr").count()) === 7, "go/no-go scorecard shown (the seven default items)");
  const advisory = await page.locator("#scorecard-verdict").textContent();
  check(advisory.includes("warnings only") && advisory.startsWith("Advisory") && !advisory.includes("NO-GO"),
    `an undeclared scorecard only advises, and says so without NO-GO: ${advisory}`);
  const figures = await page.locator("#verdicts tbody").textContent();
  check(!/\de-\d/.test(figures), `verdict figures are plain decimals: ${figures}`);
  const names = await page.locator("#verdicts tbody td:first-child").allTextContents();
  check(!names.some((n) => n === "srm (srm)"), `the sample-ratio row is named once: ${names}`);
  await page.locator("figure svg").first().waitFor({ timeout: TIMEOUT });
  check(true, "guardrail chart rendered");
  await page.locator("#adoption-overall").waitFor({ timeout: TIMEOUT });
  check(/\d+\.\d% \(\d+\/[1-9]\d*\)/.test(await page.locator("#adoption-overall").textContent()), "the rollout's adoption table counts its exposed users");
  // Success targets, judged, and the after-release checklist with its Mark done button.
  await page.locator("#success-targets tbody tr").first().waitFor({ timeout: TIMEOUT });
  const target = await page.locator("#success-targets tbody tr").first().textContent();
  check(target.includes("adoption") && target.includes(">= 40%") && /on track|at risk|met|unknown/.test(target), `the success target is shown with its status: ${target}`);
  check((await page.locator("#after-release li").count()) === 2, "the after-release items are listed");
  await page.locator("#after-release li button").first().click();
  await page.locator("#confirm[open]").waitFor({ timeout: TIMEOUT });
  await page.click("#confirm-ok");
  await page.locator('#after-release li[data-done="yes"]').waitFor({ timeout: TIMEOUT });
  check((await page.locator('#after-release li[data-done="yes"]').textContent()).includes("documentation updated"), "an item ticked off in the dashboard shows who and when");
  // Keyboard: focus the button and press Enter; the dialog asks for a reason.
  await page.locator("#cmd-approve").focus();
  await page.keyboard.press("Enter");
  await page.locator("#confirm[open]").waitFor({ timeout: TIMEOUT });
  await page.keyboard.type("looks good from the dashboard");
  await page.locator("#confirm-ok").focus();
  await page.keyboard.press("Enter");
  await page.locator('#rollout[data-wave="2"]').waitFor({ timeout: TIMEOUT });
  const after = await apiCall("GET", `/api/v1/rollouts/${rollout}`);
  const trail = await apiCall("GET", `/api/v1/audit?target=${encodeURIComponent(`rollout:${rollout}`)}&limit=100`);
  const approval = trail.find((e) => e.action === "rollout.approve");
  check(after.wave === 2 && approval && approval.actor === "bob", `approve promoted the gated wave (now wave ${after.wave}, approved by ${approval && approval.actor})`);

  // 7. A pause made through the API shows without reload, with its reason.
  await apiCall("POST", `/api/v1/rollouts/${rollout}/pause`, { reason: "paused by the on-call via API" });
  await page.locator('#rollout[data-state="paused"]').waitFor({ timeout: TIMEOUT });
  check((await page.locator("#state-reason").textContent()).includes("paused by the on-call"), "pause through the API appeared live");
  await page.locator("#cmd-resume").waitFor({ timeout: TIMEOUT });
  check(true, "resume offered while paused");

  await page.screenshot({ path: screenshot, fullPage: true });
  check(true, `screenshot written to ${screenshot}`);

  // 8. The notifications page lists the deliveries of the promotion and the pause.
  if (process.env.EXPECT_NOTIFICATIONS) {
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++) {
      await page.evaluate(() => { location.hash = "#/notifications"; });
      await page.locator("#deliveries").waitFor({ timeout: TIMEOUT });
      const text = await page.locator("#deliveries tbody").textContent();
      seen = text.includes("promoted") && text.includes("paused") && text.includes("delivered");
      if (!seen) {
        await page.evaluate(() => { location.hash = "#/audit"; });
        await page.waitForTimeout(100);
      }
    }
    check(seen, "the notifications page lists the delivered promotion and pause notices");
  }
  // 8a. The post-rollout report, read on the rollout's page.
  await page.evaluate((id) => { location.hash = `#/rollouts/${id}`; }, rollout);
  await page.locator("#show-report").waitFor({ timeout: TIMEOUT });
  await page.click("#show-report");
  await page.locator("#report").waitFor({ timeout: TIMEOUT });
  const reportText = await page.locator("#report").textContent();
  check(reportText.includes("checkout") && reportText.length > 200, `the post-rollout report is shown on the rollout's page (${reportText.slice(0, 160)})`);

  // 8b. Pilot feedback recorded from the rollout's page reaches the release's digest.
  await page.evaluate((id) => { location.hash = `#/rollouts/${id}`; }, rollout);
  await page.locator("#feedback-form").waitFor({ timeout: TIMEOUT });
  const release = (await page.locator("#feedback-form").locator("xpath=..").locator("h2").textContent()).replace("Pilot feedback on ", "");
  await page.fill("#fb-category", "usability");
  await page.fill("#fb-cohort", "nordic pilots");
  await page.selectOption("#fb-sentiment", "negative");
  await page.fill("#fb-text", "the new checkout button is hard to find");
  await page.click("#fb-submit");
  await page.waitForFunction(() => document.getElementById("alert").textContent.startsWith("Feedback"), null, { timeout: TIMEOUT });
  const said = await page.locator("#alert").textContent();
  check(said.includes("recorded"), `feedback recorded from the dashboard (${said})`);
  const digest = await apiCall("GET", `/api/v1/feedback/digest?release=${encodeURIComponent(release)}`);
  check(JSON.stringify(digest).includes("nordic pilots"), `the release's digest counts it (${release})`);

  // 8c. A plan written in the dashboard's editor: a lint error shown at its line, fixed, the
  // forecast shown for the traffic entered, applied.
  await page.evaluate(() => { location.hash = "#/plans"; });
  await page.locator("#plan-yaml").waitFor({ timeout: TIMEOUT });
  const bad = 'name: from-the-editor\nrelease: { name: checkout, version: 3.0.0, risk: low }\nflag: checkout\nnew_variant: "on"\ncontrol_variant: "off"\nenvironment: prod\nowners: { requester: alice }\nguardrails:\n  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 50, action: rollback }\nrunbook: { errors: look }\nwaves: [{ exposure: 60% }, { exposure: 100% }]\n';
  await page.fill("#plan-traffic", "200");
  await page.fill("#plan-yaml", bad);
  await page.locator("#plan-finding-list .v-fail").first().waitFor({ timeout: TIMEOUT });
  const shown = await page.locator("#plan-finding-list").textContent();
  check(/line \d+/.test(shown) && shown.includes("error["), `the editor shows the lint error at its line (${shown})`);
  check(await page.locator("#plan-apply").isDisabled(), "a plan with errors cannot be applied");
  await page.fill("#plan-yaml", bad.replace("60%", "10%"));
  await page.waitForFunction(() => document.getElementById("plan-verdict")?.textContent.startsWith("No errors"), null, { timeout: TIMEOUT });
  await page.locator("#plan-forecast-table").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#plan-forecast-table tbody tr").count()) >= 1, "the forecast is shown for the traffic entered");
  await page.click("#plan-apply");
  await page.locator('#plans tr[data-plan="from-the-editor"]').waitFor({ timeout: TIMEOUT });
  check((await page.locator("#alert").textContent()).includes("stored as v1"), "the plan was applied from the editor");
  // Its history: open the plan, change it with the guided form (the YAML follows, and typed
  // YAML fills the form), and see the diff between versions.
  await page.locator("#plan-open").selectOption("from-the-editor");
  await page.waitForFunction(() => document.getElementById("plan-requester")?.value === "alice", null, { timeout: TIMEOUT });
  check((await page.inputValue("#plan-yaml")).includes("requester: alice"), "the stored plan opens in the editor as YAML, and in the guided form");
  check(await page.inputValue("#plan-waves-0-exposure") === "10%" && await page.inputValue("#plan-guardrails-0-action") === "rollback",
    "the form shows its waves and guardrails");
  await page.fill("#plan-requester", "carol");
  await page.fill("#plan-approvers", "bob, group:cab");
  await page.click("#plan-add-blackout");
  await page.fill("#plan-blackouts-0-name", "quarter-end");
  await page.selectOption("#plan-waves-1-promotion", "approval");
  await page.waitForFunction(() => {
    const y = document.getElementById("plan-yaml").value;
    return y.includes("requester: carol") && y.includes('"group:cab"') && y.includes("name: quarter-end") && y.includes("promotion: approval");
  }, null, { timeout: TIMEOUT });
  check(true, "the guided form's changes are written to the YAML");
  await page.fill("#plan-yaml", (await page.inputValue("#plan-yaml")).replace('exposure: "10%"', 'exposure: "5%"'));
  await page.waitForFunction(() => document.getElementById("plan-waves-0-exposure")?.value === "5%", null, { timeout: TIMEOUT });
  check(true, "typed YAML fills the guided form");
  await page.waitForFunction(() => document.getElementById("plan-verdict")?.textContent.startsWith("No errors"), null, { timeout: TIMEOUT });
  await page.click("#plan-apply");
  await page.waitForFunction(() => document.getElementById("alert").textContent.includes("stored as v2"), null, { timeout: TIMEOUT });
  const storedV2 = (await apiCall("GET", "/api/v1/plans/from-the-editor")).spec;
  check(storedV2.owners.requester === "carol" && storedV2.owners.approvers.join() === "bob,group:cab" && storedV2.blackouts[0].name === "quarter-end"
    && storedV2.waves[1].promotion === "approval", `v2 stored as the form said (${JSON.stringify(storedV2.owners)})`);
  await page.click('#plans a[href="#/plans/from-the-editor"]');
  await page.locator('#plan[data-versions="2"]').waitFor({ timeout: TIMEOUT });
  const v2 = await page.locator('#plan-versions li[data-version="2"] pre').textContent();
  check(/^\+\s+requester: carol$/m.test(v2) && /^-\s+requester: alice$/m.test(v2), `the plan's history shows v1 → v2's diff (${v2})`);
  // A drill run from its page against the current version, recorded with its evidence.
  await page.fill("#drill-scenario", "name: errors spike in wave 2\nrate: 100\nduration: 1d\nbaseline: { error_rate: 0.01, latency_ms: 100 }\nfaults:\n  - { kind: error_rate, factor: 8, from_wave: 2 }\n");
  await page.click("#drill-run-button");
  await page.waitForFunction(() => /recorded/.test(document.getElementById("drill-result")?.textContent || ""), null, { timeout: TIMEOUT });
  const drillSaid = await page.locator("#drill-result").textContent();
  const drills = await apiCall("GET", "/api/v1/plans/from-the-editor/drills");
  check(drills.length === 1 && drills[0].plan_version === 2 && drills[0].report.timeline.length > 1 && drillSaid.includes(drills[0].passed ? "passed" : "failed"),
    `a drill run from the dashboard is recorded as the plan's evidence (${drillSaid.slice(0, 120)})`);
  await page.locator("#plan-drills tr[data-drill] details").first().waitFor({ timeout: TIMEOUT });
  check(true, "and listed with its timeline");

  // 9. The reports page: DORA table (or its empty note) and the calendar with the live rollout.
  await page.evaluate(() => { location.hash = "#/reports"; });
  await page.locator("#calendar").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#calendar tbody").textContent()).includes("rollout"), "the calendar lists the live rollout");
  check((await page.locator("main, body").first().textContent()).includes("DORA metrics"), "the DORA section is shown");
  // The adoption table: the rollout tracks adoption, and the traffic's users served the new
  // variant are counted in the 30-day window.
  const adoptionRow = page.locator(`#adoption tr[data-rollout="${rollout}"]`);
  await adoptionRow.waitFor({ timeout: TIMEOUT });
  check(/\d+\.\d% of [1-9]\d*/.test(await adoptionRow.textContent()), "the adoption table counts the rollout's exposed users");
  // 9b. Releases: the list, a release's members and its Start button; its member's flag is
  // mid-rollout, so the started release waits, and its page says why.
  await page.evaluate(() => { location.hash = "#/releases"; });
  const relRow = page.locator('#releases tr[data-release="launch"]');
  await relRow.waitFor({ timeout: TIMEOUT });
  check((await relRow.textContent()).includes("draft"), "the releases page lists the stored release as a draft");
  await relRow.locator("a").click();
  await page.locator('#release-members tr[data-plan="checkout-dashboard"]').waitFor({ timeout: TIMEOUT });
  await page.locator("#release-start").click();
  await page.fill("#confirm-reason", "from the browser test");
  await page.click("#confirm-ok");
  await page.locator("#release-waiting").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#release-waiting").textContent()).includes("checkout-dashboard"), "a started release whose member cannot start yet says why");
  check((await page.locator("#release-timeline").textContent()).includes("setting.release_start"), "the release's timeline shows its start");
  // 10. The freeze, turned on from the dashboard with its reason, shows as a banner; lifting
  // it (from the dashboard too) removes the banner.
  await page.evaluate(() => { location.hash = "#/rollouts"; });
  await page.locator("#freeze-on").click();
  await page.click("#confirm-ok");
  check(await page.locator("#confirm").evaluate((d) => d.open), "a freeze without a reason is not sent");
  await page.fill("#confirm-reason", "incident INC-7 from the browser test");
  await page.click("#confirm-ok");
  await page.locator("#freeze").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#freeze").textContent()).includes("INC-7"), "the freeze banner names its reason");
  check((await apiCall("GET", "/api/v1/freeze")).active === true, "the freeze is on in the API");
  await page.locator("#freeze-off").click();
  await page.click("#confirm-ok");
  await page.locator("#freeze-on").waitFor({ timeout: TIMEOUT });
  check((await page.locator("#freeze").count()) === 0, "no banner once the freeze is lifted");
  // 11. Accessibility and narrow screens: on every page, axe-core (injected into a context of
  // its own, which lets its script past the CSP) finds no serious or critical violation, and at
  // a phone's width nothing makes the page scroll sideways.
  {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
    const p3 = await ctx.newPage();
    await p3.goto(`${url}/`);
    await p3.fill("#token", approver);
    await p3.press("#token", "Enter");
    await p3.locator("#session:not([hidden])").waitFor({ timeout: TIMEOUT });
    await p3.addScriptTag({ path: new URL("./node_modules/axe-core/axe.min.js", import.meta.url).pathname });
    for (const hash of ["#/rollouts", `#/rollouts/${rollout}`, "#/plans", "#/plans/from-the-editor", "#/releases", "#/releases/launch", "#/flags", `#/flags/${newFlag}`, "#/changes", "#/reports", "#/notifications", "#/audit"]) {
      const parts = hash.slice(2).split("/");
      await p3.evaluate((h) => { location.hash = h; }, hash);
      await p3.waitForFunction((t) => document.title === t, `wavegate — ${parts.join(" / ")}`, { timeout: TIMEOUT });
      const bad = await p3.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      });
      check(bad.length === 0, `${hash}: no serious or critical accessibility violation${bad.length ? ` — ${bad.join("; ")}` : ""}`);
      const wide = await p3.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(wide <= 0, `${hash}: fits a 390 px wide screen (overflows by ${wide} px)`);
    }
    await ctx.close();
  }
  // 12. A screenshot of every page at 1280×800 (target/dashboard-<page>.png).
  {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p4 = await ctx.newPage();
    await p4.goto(`${url}/`);
    await p4.fill("#token", approver);
    await p4.press("#token", "Enter");
    await p4.locator("#session:not([hidden])").waitFor({ timeout: TIMEOUT });
    const dir = screenshot.replace(/[^/]*$/, "");
    for (const [name, hash] of [["rollouts", "#/rollouts"], ["rollout", `#/rollouts/${rollout}`], ["plans", "#/plans"], ["plan", "#/plans/from-the-editor"], ["releases", "#/releases"], ["release", "#/releases/launch"], ["flags", "#/flags"], ["flag", `#/flags/${newFlag}`], ["changes", "#/changes"], ["reports", "#/reports"], ["notifications", "#/notifications"], ["audit", "#/audit"]]) {
      const parts = hash.slice(2).split("/");
      await p4.evaluate((h) => { location.hash = h; }, hash);
      await p4.waitForFunction((t) => document.title === t, `wavegate — ${parts.join(" / ")}`, { timeout: TIMEOUT });
      await p4.screenshot({ path: `${dir}dashboard-${name}.png` });
    }
    check(true, `screenshots of 12 pages at 1280×800 written to ${dir}dashboard-*.png`);
    await ctx.close();
  }
  check(external.length === 0, `no request left the server (saw ${external.length})`);
  check(consoleErrors.length === 0, `no console errors (${consoleErrors.join(" | ")})`);
} catch (e) {
  failed = true;
  console.error(String(e && e.stack ? e.stack : e));
  if (consoleErrors.length) console.error(`console errors: ${consoleErrors.join(" | ")}`);
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    for (const p of pages) {
      console.error(`page ${p.url()} alert: ${await p.locator("#alert").textContent()}`);
      await p.screenshot({ path: `${screenshot}.failed.png`, fullPage: true });
    }
  } catch {}
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
