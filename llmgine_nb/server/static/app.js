/* The web chat page: sends the server's REST commands and renders the session's
 * event stream (WebSocket, token in the first message; resumes from the last
 * seq seen).  No framework, no build step, nothing from another site. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = { token: sessionStorage.getItem("llmgine-token"), session: null, ws: null, lastSeq: 0,
                bubbles: {}, cards: {}, asked: {}, running: false };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function kind(record) { return String(record.type || "").split(".").pop(); }
  function log(node) { $("log").appendChild(node); $("log").scrollTop = $("log").scrollHeight; return node; }
  function status(text) { $("status").textContent = text || ""; }

  async function api(method, path, body) {
    var options = { method: method, headers: { "Authorization": "Bearer " + state.token } };
    if (body !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
    var response = await fetch(path, options);
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || ("The server answered " + response.status + "."));
    return data;
  }

  // -- signing in ---------------------------------------------------------------
  async function signIn(token) {
    state.token = token;
    try {
      var me = await api("GET", "/api/me");
      sessionStorage.setItem("llmgine-token", token);
      $("who").textContent = me.name;
      $("signin").hidden = true;
      $("chat").hidden = false;
      await loadSessions(true);
    } catch (error) {
      sessionStorage.removeItem("llmgine-token");
      $("signin-error").textContent = error.message;
    }
  }
  $("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", function () {
    sessionStorage.removeItem("llmgine-token");
    location.reload();
  });

  // -- sessions -------------------------------------------------------------------
  async function loadSessions(openFirst) {
    var sessions = await api("GET", "/api/sessions");
    var list = $("sessions");
    list.textContent = "";
    sessions.forEach(function (s) {
      var item = el("li", s.id === (state.session && state.session.id) ? "current" : "",
                    (s.name || s.id.slice(0, 12)) + " · " + (s.message_count || 0) + " msgs");
      item.dataset.id = s.id;
      item.addEventListener("click", function () { openSession(s); });
      list.appendChild(item);
    });
    if (openFirst) {
      if (sessions.length) await openSession(sessions[0]);
      else await newSession();
    }
  }
  async function newSession() {
    var s = await api("POST", "/api/sessions", {});
    await openSession(s);
    await loadSessions(false);
  }
  $("new-session").addEventListener("click", function () { newSession().catch(function (e) { status(e.message); }); });

  async function openSession(s) {
    if (state.ws) { state.ws.onclose = null; state.ws.close(); }
    state.session = s; state.bubbles = {}; state.cards = {}; state.asked = {};
    $("log").textContent = "";
    Array.prototype.forEach.call($("sessions").children, function (li) {
      li.className = li.dataset.id === s.id ? "current" : "";
    });
    var messages = await api("GET", "/api/sessions/" + s.id + "/messages");
    messages.forEach(showStoredMessage);
    var fresh = await api("GET", "/api/sessions/" + s.id);
    state.lastSeq = fresh.last_seq || 0;
    setRunning(fresh.running);
    connect();
    await askPending();  // what waited before this page (re)opened; new ones arrive as events
  }
  function showStoredMessage(m) {
    if (m.role === "user") log(el("div", "msg user", m.content || ""));
    else if (m.role === "assistant" && m.content) {
      var bubble = log(el("div", "msg assistant"));
      bubble.innerHTML = window.renderMarkdown(m.content);
    } else if (m.role === "tool") log(el("div", "msg tool", "[" + m.name + "] " + (m.content || "")));
  }

  // -- the event stream -------------------------------------------------------------
  function connect() {
    var session = state.session;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
                           "/api/sessions/" + session.id + "/ws");
    state.ws = ws;
    // batch: the events ready at once come as one array (a frame each would cost more on both ends).
    ws.onopen = function () { ws.send(JSON.stringify({ token: state.token, after: state.lastSeq, batch: true })); };
    ws.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (!Array.isArray(data)) {
        if (data.control === "error") status(data.error);
        return;  // control messages are objects
      }
      data.forEach(function (record) {
        if (record.seq <= state.lastSeq) return;
        state.lastSeq = record.seq;
        render(record);
      });
    };
    ws.onclose = function () {
      if (state.ws === ws && state.session === session) setTimeout(function () {
        if (state.ws === ws) connect();
      }, 1000);
    };
  }

  function bubbleFor(record) {
    var key = record.call_id;
    if (!state.bubbles[key]) state.bubbles[key] = { node: log(el("div", "msg assistant")), text: "" };
    return state.bubbles[key];
  }

  function render(record) {
    var name = kind(record);
    if (name === "TurnStarted") {
      log(el("div", "msg user", record.text));
      setRunning(true);
    } else if (name === "LLMTextDelta") {
      var bubble = bubbleFor(record);
      bubble.text += record.text;
      bubble.node.innerHTML = window.renderMarkdown(bubble.text);
    } else if (name === "ToolStarted") {
      log(el("div", "msg tool", "[tool " + record.tool_name + "] " + JSON.stringify(record.arguments)));
    } else if (name === "ToolFinished") {
      var result = record.result || {};
      log(el("div", "msg tool", "[" + record.tool_name + ": " + result.status + "] " + (result.content || "")));
    } else if (name === "ApprovalRequested") {
      approvalCard({ call_id: record.call_id, id: record.call_id, tool_name: record.tool_name,
                     arguments: record.arguments, reason: record.reason, preview: record.preview,
                     args_hash: record.args_hash });
    } else if (name === "ApprovalDecided") {
      closeCard(state.cards[record.call_id], (record.approved ? "Approved" : "Denied") +
                (record.message ? " (" + record.message + ")" : ""));
    } else if (name === "ApprovalExpired") {
      closeCard(state.cards[record.call_id], "Expired: " + (record.reason || "nobody decided in time") + "; denied");
    } else if (name === "ChoiceRequested" || name === "ConfirmationRequested") {
      questionCard({ id: record.question_id, kind: name === "ChoiceRequested" ? "choice" : "confirm",
                     question: record.question, options: record.options || [], tool_name: record.tool_name });
    } else if (name === "QuestionAnswered") {
      closeCard(state.asked[record.question_id], "Answered: " + answerText(record.answer));
    } else if (name === "QuestionExpired") {
      closeCard(state.asked[record.question_id], "Expired: " + (record.reason || "nobody answered in time"));
    } else if (name === "TurnFinished") {
      var usage = record.usage || {};
      var cost = typeof record.cost_usd === "number" ? "$" + record.cost_usd.toFixed(6) : "cost unknown";
      log(el("div", "footer", record.model + " · " + (usage.input_tokens || 0) + " in / " +
             (usage.output_tokens || 0) + " out tokens · " + cost + " · " + (record.latency_s || 0).toFixed(2) + " s"));
      setRunning(false);
    } else if (name === "TurnFailed") {
      log(el("div", "msg failed", record.reason));
      setRunning(false);
    } else if (name === "TurnCancelled") {
      log(el("div", "footer", record.partial_text ? "Stopped; the partial reply is kept."
                                                  : "Stopped; nothing had arrived, so nothing is kept."));
      setRunning(false);
    }
  }

  // -- approvals and questions: cards drawn from the stream's events ---------------------
  function closeCard(card, text) {
    if (!card) return;
    card.className = "msg card decided";
    card.querySelector(".buttons").textContent = text;
  }
  function answerText(answer) {
    if (answer === true) return "Yes";
    if (answer === false) return "No";
    return answer === null || answer === undefined ? "None of these" : String(answer);
  }

  function approvalCard(item) {
    if (state.cards[item.call_id]) return;
    var card = log(el("div", "msg card"));
    state.cards[item.call_id] = card;
    card.appendChild(el("div", "", "Approve " + item.tool_name + "?"));
    var args = el("textarea");
    args.rows = 3;
    args.value = JSON.stringify(item.arguments || {}, null, 2);
    args.setAttribute("aria-label", "arguments");
    card.appendChild(args);
    if (item.reason) card.appendChild(el("div", "footer", item.reason));
    if (item.preview) card.appendChild(el("pre", "", item.preview));
    var reason = el("input");
    reason.placeholder = "reason, if you deny (told to the model)";
    card.appendChild(reason);
    var buttons = el("div", "buttons");
    function decide(decision) {
      var body = { decision: decision };
      if (item.args_hash) body.args_hash = item.args_hash;  // runs only with the arguments this card showed
      if (decision === "deny" && reason.value.trim()) body.message = reason.value.trim();
      if (decision === "edit") {
        try { body.arguments = JSON.parse(args.value); } catch (e) { status("The arguments are not valid JSON; fix them and try again."); return; }
      }
      api("POST", "/api/sessions/" + state.session.id + "/approvals/" + encodeURIComponent(item.call_id), body)
        .catch(function (e) { status(e.message); });
    }
    [["Approve", "approve"], ["Deny", "deny"], ["Edit and run", "edit"], ["Always allow", "always"]].forEach(function (b) {
      var button = el("button", "", b[0]);
      button.type = "button";
      button.addEventListener("click", function () { decide(b[1]); });
      buttons.appendChild(button);
    });
    card.appendChild(buttons);
  }

  function questionCard(item) {
    if (state.asked[item.id]) return;
    var card = log(el("div", "msg card"));
    state.asked[item.id] = card;
    card.appendChild(el("div", "", (item.tool_name || "A tool") + " asks: " + item.question));
    var buttons = el("div", "buttons");
    var options = item.kind === "choice" ? item.options.map(function (o) { return [o, o]; }).concat([["None of these", null]])
                                         : [["Yes", true], ["No", false]];
    options.forEach(function (option) {
      var button = el("button", "", option[0]);
      button.type = "button";
      button.addEventListener("click", function () {
        api("POST", "/api/sessions/" + state.session.id + "/questions/" + encodeURIComponent(item.id), { answer: option[1] })
          .then(function () { closeCard(card, "Answered: " + option[0]); })
          .catch(function (e) { status(e.message); });
      });
      buttons.appendChild(button);
    });
    card.appendChild(buttons);
  }

  async function askPending() {
    if (!state.session) return;
    var items = await api("GET", "/api/sessions/" + state.session.id + "/pending");
    items.forEach(function (item) {
      if (item.kind === "approval") approvalCard(item); else questionCard(item);
    });
  }

  // -- sending and stopping ----------------------------------------------------------------
  function setRunning(running) {
    state.running = running;
    $("stop").disabled = !running;
    status(running ? "Working ..." : "");
  }
  async function send() {
    var text = $("message").value;
    if (!text.trim() || !state.session) return;
    try {
      await api("POST", "/api/sessions/" + state.session.id + "/messages", { text: text });
      $("message").value = "";
    } catch (error) { status(error.message); }
  }
  $("send-form").addEventListener("submit", function (event) { event.preventDefault(); send(); });
  $("message").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(); }
  });
  $("stop").addEventListener("click", function () {
    api("POST", "/api/sessions/" + state.session.id + "/cancel").catch(function (e) { status(e.message); });
  });

  if (state.token) signIn(state.token);
})();
