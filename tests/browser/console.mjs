// Drives the local stack's web console in headless Chromium, as a person would: pick a person,
// join the challenge, connect Fitbit / Google Health through the sandbox's consent page, then
// (once the test harness has new steps waiting at the provider) click "Sync steps" and watch the
// leaderboard change. Run by tests/browser.rs, which starts the stack and owns the sandbox.
//
// Then, as a company's web app on another origin would (the CORS path): the example app page
// signs in APP_PERSON, asks the API for a start link with the token in the header, and
// connects APP_ACCOUNT through the same consent page.
//
// Environment: BASE_URL (the stack), APP_URL (the example app, another origin), PERSON (a new
// user id), ACCOUNT (their Google Health account on the sandbox), APP_PERSON and APP_ACCOUNT
// (the same for the app page), BACKFILL_STEPS (what the sandbox holds for today when they
// connect), SCREENSHOT (where the final screenshot goes), CHROMIUM (default /usr/bin/chromium).
// Protocol on stdout/stdin, one JSON line each: we print {"connected": steps} once connected
// and the leaderboard shows the backfill's BACKFILL_STEPS (the backfill runs after the
// redirect, through the stack's bus: its completion is the board showing them), the harness
// answers {"expect": steps} after setting new steps at the provider; we print {"done": steps}
// after the leaderboard shows them, with what the organizer's view showed (the demo's revoked
// grant and silent phone needing an action) and the reminders that reached the local receiver
// once "Send reminders" was pressed.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} must be set`);
  return value;
};
const BASE_URL = env("BASE_URL");
const APP_URL = env("APP_URL");
const APP_PERSON = env("APP_PERSON");
const APP_ACCOUNT = env("APP_ACCOUNT");
const PERSON = env("PERSON");
const ACCOUNT = env("ACCOUNT");
const BACKFILL_STEPS = Number(env("BACKFILL_STEPS"));
const SCREENSHOT = env("SCREENSHOT");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const STEP_TIMEOUT_MS = 30_000;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
async function receive() {
  const { value, done } = await lines.next();
  if (done) throw new Error("the harness closed stdin");
  return JSON.parse(value);
}
const log = (text) => process.stderr.write(`browser: ${text}\n`);

// Chromium as this machine runs it: no sandbox as root, and no background calls to Google's
// services (the network is closed; loopback only).
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
  ],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
page.setDefaultTimeout(STEP_TIMEOUT_MS);
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(String(error)));

const row = (user) => page.locator(`#leaderboard tr[data-user="${user}"]`);
async function stepsOf(user) {
  const text = await row(user).locator("td.steps").textContent();
  return Number(text.replaceAll(",", ""));
}
async function waitForSteps(user, wanted) {
  await page.waitForFunction(
    ([u, n]) => {
      const cell = document.querySelector(`#leaderboard tr[data-user="${u}"] td.steps`);
      return cell && Number(cell.textContent.replaceAll(",", "")) === n;
    },
    [user, wanted],
  );
}

try {
  log(`opening ${BASE_URL}/`);
  await page.goto(`${BASE_URL}/`);
  await page.waitForSelector("body[data-ready=true]");

  log(`becoming ${PERSON} and joining the challenge`);
  await page.fill("#person-input", PERSON);
  await page.click("#person-use");
  await page.waitForFunction((p) => document.querySelector("#person-info").textContent.includes(p), PERSON);
  await page.click("#join");
  await row(PERSON).waitFor();

  log("connecting Fitbit / Google Health through the sandbox consent page");
  const google = page.locator('.connection[data-provider="google_health"]');
  await google.locator('button[data-action="connect"]').click();
  await page.waitForURL((url) => !url.href.startsWith(BASE_URL));
  await page.click(`a[data-health-user-id="${ACCOUNT}"]`);
  await page.click("#approve");
  await page.waitForURL(`${BASE_URL}/`);
  await page.waitForFunction(() => document.querySelector("#message").textContent.startsWith("Connected"));
  await page.waitForSelector('.connection[data-provider="google_health"][data-status="active"]');
  await row(PERSON).waitFor();
  log(`waiting for the backfill: ${BACKFILL_STEPS} steps on the leaderboard`);
  await waitForSteps(PERSON, BACKFILL_STEPS);
  send({ connected: await stepsOf(PERSON) });

  const { expect } = await receive();
  log(`syncing; the provider now has ${expect} steps for today`);
  await page.click("#sync");
  await page.waitForFunction(() => document.querySelector("#message").textContent.startsWith("Synced"));
  await waitForSteps(PERSON, expect);
  await page.waitForSelector(`#chart rect[data-steps="${expect}"]`);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  const message = await page.locator("#message").textContent();

  log("the demo's stories: walker-26's deleted walk, walker-27 the traveller");
  await page.click('#stories a[data-user="walker-26"]');
  await page.waitForFunction(() => document.querySelector("#person-info").textContent.includes("walker-26"));
  // Yesterday's mistaken 25,000 was deleted at Google: the day shows what was walked.
  await page.waitForSelector('#chart rect[data-steps="6000"]');
  await page.waitForSelector('#stories a[data-user="walker-27"]');

  log("the organizer's view: walker-24's revoked grant and walker-25's silent phone need an action");
  const needing = (user) => page.locator(`#needing-action tr[data-user="${user}"]`);
  await needing("walker-24").waitFor();
  await needing("walker-25").waitFor();
  const codes = {
    "walker-24": await needing("walker-24").getAttribute("data-code"),
    "walker-25": await needing("walker-25").getAttribute("data-code"),
  };
  log("sending the reminders; they arrive at the local receiver");
  await page.click("#send-reminders");
  await page.waitForFunction(() => document.querySelector("#message").textContent.startsWith("Reminders:"));
  const reminders = page.locator("#message");
  const sentMessage = await reminders.textContent();
  await page.waitForSelector('#received li[data-kind="ReminderDue"][data-user="walker-25"]');
  // walker-24 was reminded once already, when the sweep found the grant revoked.
  await page.waitForSelector('#received li[data-kind="ReminderDue"][data-user="walker-24"]');
  const digest = page.locator('#received li[data-kind="DigestDue"]').first();
  await digest.waitFor();
  log("exporting the results as CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const csv = await new Promise((resolve, reject) => {
    download.createReadStream().then((stream) => {
      const chunks = [];
      stream.on("data", (chunk) => chunks.push(chunk));
      stream.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      stream.on("error", reject);
    }, reject);
  });
  const organizer = {
    codes,
    sent: sentMessage,
    digest: await digest.textContent(),
    export: { file: download.suggestedFilename(), header: csv.split("\r\n")[0], rows: csv.trim().split("\r\n").length - 1 },
  };
  await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-organizer.png"), fullPage: true });

  log(`the example app on ${APP_URL}: ${APP_PERSON} connects through CORS and the start link`);
  const app = await browser.newPage();
  app.setDefaultTimeout(STEP_TIMEOUT_MS);
  app.on("pageerror", (error) => pageErrors.push(`app: ${error}`));
  await app.goto(`${APP_URL}/`);
  await app.fill("#person", APP_PERSON);
  await app.click('#sign-in button[type="submit"]');
  await app.waitForFunction(() => document.querySelector("#result").textContent.includes("not connected"));
  await app.click("#connect");
  await app.waitForURL((url) => !url.href.startsWith(APP_URL) && !url.href.startsWith(BASE_URL));
  await app.click(`a[data-health-user-id="${APP_ACCOUNT}"]`);
  await app.click("#approve");
  await app.waitForURL(`${APP_URL}/?connected=google_health`);
  await app.waitForFunction(() => document.querySelector("#result").textContent === "google_health: active");
  const appStatus = await app.locator("#result").textContent();

  if (pageErrors.length) throw new Error(`the page threw: ${pageErrors.join("; ")}`);
  send({ done: await stepsOf(PERSON), message, app: appStatus, organizer });
} catch (error) {
  log(`failed at ${page.url()}: ${error.message}`);
  log(`page said: ${await page.locator("#message").textContent().catch(() => "(no message)")}`);
  await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-failed.png"), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
  lines.return?.();
  process.stdin.destroy();
}
