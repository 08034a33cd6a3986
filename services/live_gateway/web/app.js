// The tutor's page: sign in with a token, My Day, and the Control Center of a session.
// Every view comes from the gateway's websocket (snapshot, then merge patches); every action
// is a command sent to the command API. Nothing polls: the one-second tick only counts down
// from the last figures the gateway sent.

import { Api } from "./api.js";
import { Live } from "./live.js";
import { clear, el, syncList } from "./dom.js";

const TOKEN_KEY = "tutorpulse.token";
const STAFF = new Set(["SUPER_ADMIN", "CENTER_ADMIN", "CENTER_SUPERVISOR", "TEACHER"]);
const PRIORITY_ORDER = ["URGENT", "HIGH", "MEDIUM", "LOW"];
const ATTENDANCE = [
  ["PRESENT", "Present"],
  ["LATE", "Late"],
  ["ABSENT", "Absent"],
  ["EXCUSED", "Excused"],
];
const WARN_SECONDS = 10 * 60;
const URGENT_SECONDS = 5 * 60;

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  token: null,
  claims: null,
  api: null,
  live: null,
  timeZone: undefined,
  myDay: null,
  sessionId: null,
  session: null,
  seenHelp: null, // help request ids already announced, per session view
  timerLevel: null,
  exercisesLoaded: false,
};

// --- time ------------------------------------------------------------------------------

function zone() {
  return state.timeZone;
}

function clockTime(date) {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: zone(),
    hour: "2-digit",
    minute: "2-digit",
  }).format(date);
}

function timeOf(iso) {
  return iso ? clockTime(new Date(iso)) : "";
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function roughly(seconds) {
  const minutes = Math.round(Math.abs(seconds) / 60);
  if (minutes < 1) {
    return "under a minute";
  }
  if (minutes < 60) {
    return `${minutes} min`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A figure that moves with the clock: `seconds` as sent, counted on from `received`. */
function ticking(element, seconds, direction, format) {
  if (seconds === null || seconds === undefined) {
    delete element.dataset.tick;
    return;
  }
  element.dataset.tick = format;
  element.dataset.base = String(seconds);
  element.dataset.dir = String(direction);
  element.dataset.at = String(performance.now());
  renderTick(element, performance.now());
}

function tickValue(element, now) {
  const elapsed = (now - Number(element.dataset.at)) / 1000;
  return Number(element.dataset.base) + Number(element.dataset.dir) * elapsed;
}

function renderTick(element, now) {
  const value = tickValue(element, now);
  const format = element.dataset.tick;
  let text;
  if (format === "clock") {
    text = duration(value);
  } else if (format === "ago") {
    text = `${roughly(value)} ago`;
  } else if (format === "in") {
    text = value > 0 ? `in ${roughly(value)}` : "now";
  } else if (format === "left") {
    text = value > 0 ? `${roughly(value)} left` : "over time";
  } else if (format === "waiting") {
    text = `waiting ${duration(value)}`;
  } else {
    text = roughly(value);
  }
  if (element.textContent !== text) {
    element.textContent = text;
  }
}

function tick() {
  const now = performance.now();
  if (state.timeZone !== undefined || state.claims) {
    $("clock").textContent = clockTime(new Date());
  }
  for (const element of document.querySelectorAll("[data-tick]")) {
    renderTick(element, now);
  }
  renderTimer(now);
}

// --- messages ----------------------------------------------------------------------------

function announce(text) {
  const line = el("p", {}, text);
  const announcer = $("announcer");
  announcer.append(line);
  while (announcer.childElementCount > 5) {
    announcer.firstElementChild.remove();
  }
}

function showProblem(title, detail) {
  $("problem-title").textContent = title;
  $("problem-detail").textContent = detail;
  $("problem").hidden = false;
}

function hideProblem() {
  $("problem").hidden = true;
}

/** Run a command from a button: busy while it runs, its refusal shown as the API words it. */
async function act(button, label, send) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await send();
    hideProblem();
    announce(`${label}: done`);
  } catch (error) {
    if (error.status === 401) {
      signOut();
      showProblem("Signed out", `${label} was refused: ${error.detail || error.message}`);
      return;
    }
    showProblem(`${label} refused`, error.detail || error.message);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// --- sign-in -----------------------------------------------------------------------------

function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) {
    return null;
  }
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

function showSignIn(message) {
  $("sign-in").hidden = false;
  $("my-day").hidden = true;
  $("session").hidden = true;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  if (message) {
    showProblem("Not signed in", message);
  }
  $("token").focus();
}

function signIn(token) {
  const claims = claimsOf(token);
  if (!claims || !claims.role) {
    showSignIn("that is not an access token (three parts separated by dots)");
    return;
  }
  if (claims.exp && claims.exp * 1000 < Date.now()) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("that token has expired; get a new one");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  state.claims = claims;
  state.api = new Api(state.config, token);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  state.live = new Live(`${scheme}://${location.host}/live`, token, {
    onView,
    onRefused,
    onState,
  });
  $("sign-in").hidden = true;
  $("token").value = "";
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = claims.role;
  hideProblem();
  state.live.start();
  if (STAFF.has(claims.role)) {
    state.live.follow("my-day");
  }
  route();
}

function signOut() {
  if (state.live) {
    state.live.stop();
  }
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, {
    token: null,
    claims: null,
    api: null,
    live: null,
    myDay: null,
    session: null,
    sessionId: null,
    exercisesLoaded: false,
  });
  clear($("tiles"), $("queue"), $("attendance"), $("day-sessions"));
  $("link").dataset.state = "offline";
  $("link").textContent = "Offline";
  history.replaceState(null, "", location.pathname);
  showSignIn();
}

function onState(linkState, detail) {
  const link = $("link");
  link.dataset.state = linkState;
  link.textContent = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    refused: "Signed out",
  }[linkState];
  if (linkState === "refused") {
    state.live = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(`the gateway refused the token: ${detail}`);
  }
}

function onRefused(topic, status, detail) {
  const what = topic === "my-day" ? "My Day" : topic ? "this session" : "a message";
  showProblem(`Cannot follow ${what} (${status})`, detail);
}

function onView(topic, data) {
  if (topic === "my-day") {
    state.myDay = data;
    state.timeZone = data.timeZone || state.timeZone;
    renderMyDay();
    tick();
  } else if (topic === `session:${state.sessionId}`) {
    const first = state.session === null;
    state.session = data;
    state.timeZone = state.timeZone || data.timeZone;
    renderSession(first);
  }
}

// --- routing -----------------------------------------------------------------------------

function route() {
  if (!state.live) {
    return;
  }
  const match = /^#\/session\/([0-9a-f-]{36})$/.exec(location.hash);
  const sessionId = match ? match[1] : null;
  if (sessionId !== state.sessionId) {
    if (state.sessionId) {
      state.live.unfollow(`session:${state.sessionId}`);
    }
    state.sessionId = sessionId;
    state.session = null;
    state.seenHelp = null;
    state.timerLevel = null;
    clear($("tiles"), $("queue"), $("attendance"));
    if (sessionId) {
      state.live.follow(`session:${sessionId}`);
      loadExercises();
    }
  }
  $("my-day").hidden = sessionId !== null;
  $("session").hidden = sessionId === null;
  $("to-session").disabled = sessionId === null;
  $("to-my-day").setAttribute("aria-current", sessionId ? "false" : "page");
  $("to-session").setAttribute("aria-current", sessionId ? "page" : "false");
  if (sessionId && !state.session) {
    $("session-title").textContent = "Control Center";
    $("session-status").textContent = "Loading…";
  }
}

async function loadExercises() {
  if (state.exercisesLoaded || !state.api) {
    return;
  }
  try {
    const answer = await state.api.get("/api/v1/exercises");
    const list = Array.isArray(answer.data) ? answer.data : answer.data.exercises || [];
    const select = $("exercise");
    for (const exercise of list.filter((e) => !e.retired)) {
      select.append(
        el("option", { value: exercise.exerciseId }, `${exercise.title} (${exercise.courseId})`),
      );
    }
    state.exercisesLoaded = true;
  } catch (error) {
    showProblem("Exercises not loaded", error.detail || error.message);
  }
}

// --- My Day ------------------------------------------------------------------------------

function sessionLine(li, session) {
  const when = `${timeOf(session.startsAt)}–${timeOf(session.endsAt)}`;
  li.querySelector(".when").textContent = when;
  const link = li.querySelector("a");
  link.textContent = session.title;
  link.href = `#/session/${session.sessionId}`;
  const badge = li.querySelector(".badge");
  badge.textContent = session.status;
  badge.dataset.status = session.status;
  const countdown = li.querySelector(".countdown");
  const now = Date.now();
  if (session.status === "SCHEDULED") {
    ticking(countdown, (Date.parse(session.startsAt) - now) / 1000, -1, "in");
  } else if (session.status === "LIVE") {
    ticking(countdown, (Date.parse(session.endsAt) - now) / 1000, -1, "left");
  } else {
    ticking(countdown, null);
    countdown.textContent = "";
  }
  li.querySelector(".names").textContent = (session.studentNames || [])
    .map((name) => name || "a student")
    .join(", ");
}

function renderMyDay() {
  const day = state.myDay;
  $("my-day-date").textContent = `${day.date} · ${day.timeZone}${day.tutorName ? ` · ${day.tutorName}` : ""}`;
  const stats = day.stats || {};
  syncList(
    $("my-day-stats"),
    [
      ["sessionsToday", "sessions today"],
      ["openHelpRequests", "help waiting"],
      ["overdueCatchUps", "catch-ups overdue"],
      ["toGrade", "to mark"],
      ["paperToMark", "paper to mark"],
    ],
    ([key]) => key,
    () => el("p", { class: "stat" }, el("strong"), el("span")),
    (p, [key, label]) => {
      p.querySelector("strong").textContent = String(stats[key] ?? 0);
      p.querySelector("span").textContent = ` ${label}`;
    },
  );
  syncList(
    $("day-sessions"),
    day.sessions || [],
    (s) => s.sessionId,
    () =>
      el(
        "li",
        { class: "row" },
        el("span", { class: "when" }),
        el("a"),
        el("span", { class: "badge" }),
        el("span", { class: "countdown" }),
        el("span", { class: "names" }),
      ),
    sessionLine,
  );
  syncList(
    $("day-alerts"),
    day.alerts || [],
    (a) => `${a.type}:${a.helpRequestId || a.studentId || (a.sessionIds || []).join(",")}`,
    () => el("li", { class: "row alert" }, el("span", { class: "badge" }), el("span")),
    (li, alert) => {
      li.querySelector(".badge").textContent = alert.type.replaceAll("_", " ").toLowerCase();
      li.querySelector("span:last-child").textContent = alert.message;
    },
  );
  syncList(
    $("day-help"),
    day.openHelpRequests || [],
    (h) => h.helpRequestId,
    () =>
      el(
        "li",
        { class: "row" },
        el("span", { class: "badge prio" }),
        el("a"),
        el("span", { class: "waiting" }),
      ),
    (li, help) => {
      const badge = li.querySelector(".prio");
      badge.textContent = help.priority;
      badge.dataset.priority = help.priority;
      const link = li.querySelector("a");
      link.textContent = help.studentName || "a student";
      link.href = `#/session/${help.sessionId}`;
      ticking(li.querySelector(".waiting"), help.waitingSeconds, 1, "waiting");
      li.classList.toggle("breached", Boolean(help.slaBreached));
    },
  );
  const catchUps = [
    ...(day.catchUps?.overdue || []).map((c) => ({ ...c, late: true })),
    ...(day.catchUps?.pending || []),
  ];
  syncList(
    $("day-catch-ups"),
    catchUps,
    (c) => c.catchUpId,
    () => el("li", { class: "row" }, el("span", { class: "badge" }), el("span")),
    (li, catchUp) => {
      const badge = li.querySelector(".badge");
      badge.textContent = catchUp.late ? "overdue" : catchUp.status.toLowerCase();
      li.classList.toggle("breached", Boolean(catchUp.late));
      li.querySelector("span:last-child").textContent =
        `${catchUp.studentName || "a student"}: ${catchUp.reason} (due ${new Intl.DateTimeFormat("en-GB", { timeZone: zone(), dateStyle: "medium" }).format(new Date(catchUp.dueAt))})`;
    },
  );
  const marking = [
    ...(day.toGrade || []).map((w) => ({
      key: w.workId || w.homeworkId,
      text: `${w.studentName || "a student"}: ${w.title} (${w.kind.toLowerCase()}${w.paperUploadId ? ", on paper" : ""})`,
    })),
    ...(day.paperToMark || []).map((p) => ({
      key: `paper:${p.uploadId}`,
      text: `${p.studentName || "a student"}: ${p.title} (paper, ${p.status.toLowerCase().replace("_", " ")})`,
    })),
  ];
  syncList(
    $("day-marking"),
    marking,
    (m) => m.key,
    () => el("li", { class: "row" }),
    (li, m) => {
      li.textContent = m.text;
    },
  );
}

// --- the Control Center ------------------------------------------------------------------

function post(path, body) {
  return state.api.post(`/api/v1/sessions/${state.sessionId}${path}`, body);
}

function tileOf(student) {
  const id = student.studentId;
  const nameId = `tile-${id}-name`;
  const mode = el("button", { type: "button", class: "mode", "aria-pressed": "false" }, "Teach");
  mode.addEventListener("click", () => {
    const teaching = mode.getAttribute("aria-pressed") === "true";
    const next = teaching ? "OBSERVE" : "TEACH";
    act(mode, `${next === "TEACH" ? "Teach" : "Observe"} ${mode.dataset.name}`, () =>
      post(`/students/${id}/mode`, { mode: next }),
    );
  });
  const note = el("button", { type: "button", class: "note" }, "Note");
  note.addEventListener("click", () => openNote(id, note.dataset.name, note));
  return el(
    "li",
    { class: "tile", id: `tile-${id}`, "aria-labelledby": nameId, "data-student": id },
    el("h4", { id: nameId, class: "name" }),
    el("p", { class: "lesson" }),
    el(
      "p",
      { class: "state" },
      el("span", { class: "badge activity" }),
      el("span", { class: "badge teaching" }),
      el("span", { class: "badge attendance" }),
    ),
    el(
      "p",
      { class: "work" },
      el("span", { class: "work-title" }),
      el("progress", { max: "100", value: "0" }),
    ),
    el("p", { class: "attended" }, el("span", { class: "label" }), el("span", { class: "since" })),
    el("p", { class: "help" }, el("span", { class: "help-text" }), el("span", { class: "since" })),
    el("div", { class: "actions" }, mode, note),
  );
}

function updateTile(li, student) {
  const name = student.name || "A student";
  li.querySelector(".name").textContent = name;
  li.querySelector(".lesson").textContent =
    [student.courseId, student.lessonId].filter(Boolean).join(" · ") || "No course set";
  const activity = li.querySelector(".activity");
  activity.textContent = student.activity.replace("_", " ").toLowerCase();
  activity.dataset.activity = student.activity;
  const teachingMode = student.teaching?.mode || "OBSERVE";
  const teaching = li.querySelector(".teaching");
  teaching.textContent = teachingMode.toLowerCase();
  teaching.dataset.mode = teachingMode;
  const attendance = li.querySelector(".attendance");
  attendance.textContent = student.attendance ? student.attendance.toLowerCase() : "not marked";
  attendance.dataset.attendance = student.attendance || "NONE";
  const current = student.currentExercise;
  li.querySelector(".work-title").textContent = current
    ? `${current.title}: ${current.status.replace("_", " ").toLowerCase()}, ${current.progress}%`
    : `No work in progress${student.workToGrade ? ` · ${student.workToGrade} to mark` : ""}`;
  const progress = li.querySelector("progress");
  progress.value = current ? current.progress : 0;
  progress.setAttribute("aria-label", `Progress of ${name}`);
  const attended = li.querySelector(".attended");
  const since = student.sinceAttendedSeconds === null ? "not attended yet" : "attended ";
  attended.querySelector(".label").textContent = student.needsAttention
    ? `Needs attention · ${since}`
    : since[0].toUpperCase() + since.slice(1);
  ticking(attended.querySelector(".since"), student.sinceAttendedSeconds, 1, "ago");
  li.classList.toggle("attention", Boolean(student.needsAttention));
  const help = student.openHelpRequest;
  li.querySelector(".help-text").textContent = help
    ? `Help ${help.priority.toLowerCase()}, ${help.status.toLowerCase().replace("_", " ")}, `
    : "No help asked";
  ticking(li.querySelector(".help .since"), help ? help.waitingSeconds : null, 1, "waiting");
  if (!help) {
    li.querySelector(".help .since").textContent = "";
  }
  li.dataset.help = help ? help.priority : "";
  li.classList.toggle("breached", Boolean(help && help.slaBreached));
  const mode = li.querySelector(".mode");
  mode.setAttribute("aria-pressed", String(teachingMode === "TEACH"));
  mode.setAttribute("aria-label", `Teach ${name}`);
  mode.dataset.name = name;
  const note = li.querySelector(".note");
  note.setAttribute("aria-label", `Write a note about ${name}`);
  note.dataset.name = name;
}

function queueItem(help) {
  const rid = help.helpRequestId;
  const acknowledge = el("button", { type: "button", class: "acknowledge" }, "Acknowledge");
  const start = el("button", { type: "button", class: "start" }, "Start helping");
  const reply = el("input", { type: "text", id: `reply-${rid}`, class: "reply", maxlength: "2000" });
  const resolve = el("button", { type: "button", class: "resolve" }, "Resolve");
  const base = `/help-requests/${rid}`;
  acknowledge.addEventListener("click", () =>
    act(acknowledge, "Acknowledge", () => post(`${base}/acknowledge`)),
  );
  start.addEventListener("click", () => act(start, "Start helping", () => post(`${base}/start`)));
  const send = () =>
    act(resolve, "Resolve", async () => {
      await post(`${base}/resolve`, { response: reply.value.trim() });
      reply.value = "";
    });
  resolve.addEventListener("click", send);
  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      send();
    }
  });
  return el(
    "li",
    { class: "help-item", id: `help-${rid}` },
    el(
      "p",
      { class: "who" },
      el("strong", { class: "student" }),
      el("span", { class: "badge prio" }),
      el("span", { class: "badge status" }),
    ),
    el("p", { class: "message" }),
    el(
      "p",
      { class: "times" },
      el("span", {}, "Waiting "),
      el("span", { class: "waiting" }),
      el("span", { class: "sla" }),
    ),
    el(
      "div",
      { class: "actions" },
      acknowledge,
      start,
      el("label", { for: `reply-${rid}`, class: "visually-hidden" }, "Reply"),
      reply,
      resolve,
    ),
  );
}

function updateQueueItem(li, { help, name }) {
  li.querySelector(".student").textContent = name;
  const prio = li.querySelector(".prio");
  prio.textContent = help.priority;
  prio.dataset.priority = help.priority;
  li.dataset.priority = help.priority;
  const status = li.querySelector(".status");
  status.textContent = help.status.toLowerCase();
  li.querySelector(".message").textContent = help.message ? `“${help.message}”` : "No message";
  ticking(li.querySelector(".waiting"), help.waitingSeconds, 1, "clock");
  const sla = li.querySelector(".sla");
  sla.textContent = help.slaBreached
    ? ` · past its SLA (${timeOf(help.slaDueAt)})${help.escalatedAt ? ", escalated" : ""}`
    : ` · SLA ${timeOf(help.slaDueAt)}`;
  li.classList.toggle("breached", Boolean(help.slaBreached));
  li.querySelector(".acknowledge").hidden = help.status !== "PENDING";
  li.querySelector(".start").hidden = help.status === "IN_PROGRESS";
  li.querySelector(".reply").setAttribute("aria-label", `Reply to ${name}`);
  li.querySelector(".resolve").setAttribute("aria-label", `Resolve ${name}'s request`);
}

function attendanceRow(student) {
  const id = student.studentId;
  const group = el("div", { role: "group", class: "marks" });
  for (const [status, label] of ATTENDANCE) {
    const button = el(
      "button",
      { type: "button", "data-status": status, "aria-pressed": "false" },
      label,
    );
    button.addEventListener("click", () =>
      act(button, `Mark ${label.toLowerCase()}`, () =>
        state.api.post("/api/academic/attendance/bulk", {
          sessionId: state.sessionId,
          records: [{ studentId: id, status }],
        }),
      ),
    );
    group.append(button);
  }
  return el("tr", { "data-student": id }, el("th", { scope: "row" }), el("td", {}, group));
}

function updateAttendanceRow(tr, student) {
  const name = student.name || "A student";
  tr.querySelector("th").textContent = name;
  tr.querySelector(".marks").setAttribute("aria-label", `Attendance of ${name}`);
  for (const button of tr.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === student.attendance));
  }
}

function renderTimer(now) {
  const timer = $("session-timer");
  if (!state.session) {
    timer.textContent = "";
    return;
  }
  const session = state.session;
  let level = "calm";
  if (session.status === "LIVE" && timer.dataset.at) {
    const remaining = tickValue(timer, now);
    if (remaining < 0) {
      level = "over";
      timer.textContent = `${duration(-remaining)} over time`;
    } else {
      level = remaining <= URGENT_SECONDS ? "urgent" : remaining <= WARN_SECONDS ? "warn" : "calm";
      timer.textContent = `${duration(remaining)} left`;
    }
  } else if (session.status === "SCHEDULED" && timer.dataset.at) {
    timer.textContent = `Starts in ${roughly(tickValue(timer, now))}`;
  } else {
    timer.textContent = session.status === "COMPLETED" ? "Ended" : "";
  }
  timer.dataset.level = level;
  if (state.timerLevel !== null && level !== state.timerLevel && level !== "calm") {
    announce(
      {
        warn: "Ten minutes left in the session",
        urgent: "Five minutes left in the session",
        over: "The session has run past its end",
      }[level],
    );
  }
  state.timerLevel = level;
}

function renderSession(first) {
  const session = state.session;
  $("session-title").textContent = session.title;
  const status = $("session-status");
  status.textContent = `${session.status.toLowerCase()} · ${timeOf(session.startsAt)}–${timeOf(session.endsAt)}`;
  status.dataset.status = session.status;
  const timer = $("session-timer");
  const timing = session.timing || {};
  if (timing.remainingSeconds !== undefined) {
    timer.dataset.base = String(timing.remainingSeconds);
  } else if (timing.startsInSeconds !== undefined) {
    timer.dataset.base = String(timing.startsInSeconds);
  } else {
    delete timer.dataset.at;
  }
  if (timing.remainingSeconds !== undefined || timing.startsInSeconds !== undefined) {
    timer.dataset.dir = "-1";
    timer.dataset.at = String(performance.now());
  }
  renderTimer(performance.now());
  $("extend").disabled = session.status !== "LIVE";
  $("push-exercise").disabled = session.status !== "LIVE";

  const byName = [...session.students].sort(
    (a, b) => (a.name || "").localeCompare(b.name || "") || a.studentId.localeCompare(b.studentId),
  );
  syncList($("tiles"), byName, (s) => s.studentId, tileOf, updateTile);
  syncList($("attendance"), byName, (s) => s.studentId, attendanceRow, updateAttendanceRow);

  // The queue: open requests by priority, escalated first, then the longest waiting, as the
  // view orders its students.
  const queue = session.students
    .filter((s) => s.openHelpRequest)
    .map((s) => ({ help: s.openHelpRequest, name: s.name || "A student" }));
  queue.sort(
    (a, b) =>
      PRIORITY_ORDER.indexOf(a.help.priority) - PRIORITY_ORDER.indexOf(b.help.priority) ||
      Number(!a.help.escalatedAt) - Number(!b.help.escalatedAt) ||
      a.help.raisedAt.localeCompare(b.help.raisedAt),
  );
  syncList($("queue"), queue, (q) => q.help.helpRequestId, (q) => queueItem(q.help), updateQueueItem);
  $("queue-count").textContent = queue.length ? `(${queue.length})` : "";

  const open = new Set(queue.map((q) => q.help.helpRequestId));
  if (first || state.seenHelp === null) {
    state.seenHelp = open;
    if (queue.length) {
      announce(`${queue.length} waiting for help in ${session.title}`);
    }
    return;
  }
  for (const { help, name } of queue) {
    if (!state.seenHelp.has(help.helpRequestId)) {
      announce(
        `${name} asks for help, ${help.priority.toLowerCase()}${help.message ? `: ${help.message}` : ""}`,
      );
    }
  }
  state.seenHelp = open;
}

// --- notes -------------------------------------------------------------------------------

let noteFor = null;

function openNote(studentId, name, opener) {
  noteFor = { studentId, name, opener };
  $("note-title").textContent = `Note about ${name}`;
  $("note-text").value = "";
  $("note-dialog").showModal();
  $("note-text").focus();
}

async function saveNote(event) {
  event.preventDefault();
  if (!noteFor) {
    return;
  }
  const { studentId, name, opener } = noteFor;
  const visibility = document.querySelector('input[name="visibility"]:checked').value;
  const button = $("note-form").querySelector('button[type="submit"]');
  await act(button, `Note about ${name}`, async () => {
    await state.api.post(`/api/v1/students/${studentId}/notes`, {
      content: $("note-text").value,
      visibility,
      sessionId: state.sessionId,
    });
    $("note-dialog").close();
    opener.focus();
  });
}

// --- start -------------------------------------------------------------------------------

async function main() {
  const answer = await fetch("config.json", { cache: "no-store" });
  state.config = await answer.json();
  $("token-help").textContent = state.config.devMode
    ? "In development, mint one in a terminal in the project's folder: .venv/bin/tp-token john (a tutor of the demo centre). The token is kept only in this tab."
    : "Paste the token your centre's sign-in gave you. It is kept only in this tab.";
  if (state.config.loginUrl) {
    $("login-link").href = state.config.loginUrl;
    $("login").hidden = false;
  }
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("problem-close").addEventListener("click", hideProblem);
  $("to-my-day").addEventListener("click", () => {
    location.hash = "#/my-day";
  });
  $("to-session").addEventListener("click", () => $("main").focus());
  $("extend").addEventListener("click", () =>
    act($("extend"), "Extend by 5 minutes", () => post("/extend", { minutes: 5 })),
  );
  $("push-exercise").addEventListener("click", () =>
    act($("push-exercise"), "Set the exercise for everyone", () =>
      post("/work", { exerciseId: $("exercise").value }),
    ),
  );
  $("note-form").addEventListener("submit", saveNote);
  $("note-cancel").addEventListener("click", () => {
    $("note-dialog").close();
    noteFor?.opener.focus();
  });
  window.addEventListener("hashchange", route);
  setInterval(tick, 1000);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    signIn(token);
  } else {
    showSignIn();
  }
}

main();
