/*
 * The staff "reply tester" page (/staff/, web/staff.py). Plain JavaScript, no dependencies.
 * Talks only to this server's /staff/api/* (the session cookie goes along); the server asks
 * the assistant. Every text from the server goes into the page with textContent, never as HTML,
 * and nothing is styled inline (the page's CSP forbids it).
 */
(function () {
  "use strict";

  var LEVEL_WORDS = {
    emergency: "Emergency: the visitor is told to call 911",
    urgent: "Urgent: the visitor is told to call the clinic now",
    handoff: "Hand-off: the visitor asked for a person and gets the clinic's number"
  };
  var RESULT_WORDS = {
    answered: "Answered",
    "fell back": "No answer (fell back): the visitor is given the clinic's number",
    escalated: "Escalated",
    "no reply": "No reply at all",
    error: "Error"
  };

  var meta = { threshold: null, intents: [], levels: [] };
  // pending: the last "start over" request; a question waits for it (else it could be sent
  // first and then forgotten).
  var state = { busy: false, last: null, transcript: [], pending: Promise.resolve() };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function percent(value) {
    var v = Number(value) || 0;
    return v > 0 && v < 0.005 ? "under 1%" : Math.round(v * 100) + "%";
  }

  // ------------------------------------------------------------------------------------------
  // Talking to the server
  // ------------------------------------------------------------------------------------------

  function api(method, path, body, isForm) {
    var options = { method: method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (body !== undefined) {
      if (isForm) {
        options.body = body;
      } else {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
    }
    return fetch("/staff/api/" + path, options).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/staff/login");
        throw new Error("Please log in again.");
      }
      return response.json().catch(function () {
        return {};
      }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || ("The server answered " + response.status + "."));
        }
        return data;
      });
    });
  }

  // ------------------------------------------------------------------------------------------
  // The visitor's view, in the widget's look (widget.css, .rw-* classes)
  // ------------------------------------------------------------------------------------------

  function telHref(phone) {
    var digits = String(phone || "").replace(/\D/g, "");
    return digits ? "tel:+" + digits : null;
  }

  function formatPhone(phone) {
    var digits = String(phone || "").replace(/\D/g, "");
    if (digits.length === 11 && digits.charAt(0) === "1") {
      digits = digits.slice(1);
    }
    if (digits.length === 10) {
      return "(" + digits.slice(0, 3) + ") " + digits.slice(3, 6) + "-" + digits.slice(6);
    }
    return phone;
  }

  function renderEscalationBox(escalation) {
    var box = el("div", { "class": "rw-escalation rw-escalation-" + escalation.level });
    if (escalation.level === "emergency") {
      box.appendChild(el("p", { "class": "rw-911-notice" }, "If someone may be in danger, call 911 now."));
      box.appendChild(el("a", { "class": "rw-call rw-call-911", "href": "tel:911" }, "Call 911"));
    }
    var href = telHref(escalation.phone);
    if (href) {
      box.appendChild(el("a", { "class": "rw-call rw-call-clinic", "href": href },
        "Call the clinic: " + formatPhone(escalation.phone)));
    }
    return box;
  }

  function renderTranscript() {
    var log = $("preview");
    clear(log);
    var lastUser = -1;
    state.transcript.forEach(function (item, i) {
      if (item.who === "user") {
        lastUser = i;
      }
    });
    state.transcript.forEach(function (item, i) {
      var node = el("div", { "class": "rw-msg rw-msg-" + item.who });
      if (item.text) {
        var bubble = el("p", { "class": "rw-bubble" });
        bubble.appendChild(el("span", { "class": "rw-sr-only" }, item.who === "user" ? "Visitor: " : "Assistant: "));
        bubble.appendChild(document.createTextNode(item.text));
        node.appendChild(bubble);
      }
      if (item.escalation) {
        node.appendChild(renderEscalationBox(item.escalation));
      }
      if (item.buttons && item.buttons.length && i > lastUser) {
        var group = el("div", { "class": "rw-quick", "role": "group", "aria-label": "Suggested questions" });
        item.buttons.forEach(function (button) {
          var b = el("button", { "type": "button", "class": "rw-quick-button",
            "title": "Asks " + button.payload + " (as the visitor's click would)" }, button.title);
          b.addEventListener("click", function () {
            ask(button.payload, button.title);
          });
          group.appendChild(b);
        });
        node.appendChild(group);
      }
      log.appendChild(node);
    });
    if (!state.transcript.length) {
      log.appendChild(el("p", { "class": "rw-welcome" }, "The answer will appear here."));
    }
    log.scrollTop = log.scrollHeight;
  }

  // ------------------------------------------------------------------------------------------
  // Why: intent, runners-up, escalation, source, low confidence
  // ------------------------------------------------------------------------------------------

  function renderWhy(result) {
    $("outcome").textContent = RESULT_WORDS[result.result] || result.result;
    $("outcome").className = "st-outcome st-outcome-" + String(result.result).replace(/\s+/g, "-");

    var intent = result.intent || {};
    var notUnderstood = intent.name === "nlu_fallback";
    $("intent-name").textContent = intent.name || "(nothing)";
    $("intent-confidence").textContent = notUnderstood
      ? "(not understood: no intent was sure enough)" : percent(intent.confidence) + " sure";
    var meter = $("intent-meter");
    meter.hidden = notUnderstood;
    if (typeof result.threshold === "number") {
      meter.low = result.threshold;
      meter.high = Math.min(0.99, result.threshold + 0.3);
      meter.optimum = 1;
    }
    meter.value = Number(intent.confidence) || 0;
    meter.textContent = percent(intent.confidence);

    var ranking = $("ranking");
    clear(ranking);
    (result.ranking || []).forEach(function (r) {
      var li = el("li");
      li.appendChild(el("code", {}, r.name));
      li.appendChild(document.createTextNode(" " + percent(r.confidence)));
      ranking.appendChild(li);
    });
    if (!ranking.children.length) {
      ranking.appendChild(el("li", {}, "none"));
    }

    var esc = $("escalation");
    clear(esc);
    if (result.escalation) {
      var level = result.escalation.level;
      esc.appendChild(el("strong", { "class": "st-level st-level-" + level }, level.toUpperCase()));
      esc.appendChild(document.createTextNode(" " + (LEVEL_WORDS[level] || "")));
      var why = el("div", { "class": "st-reason" });
      why.textContent = "Why: " + (result.escalation.reason || "the visitor asked to talk to someone") +
        (result.escalation.detected_by ? " (found by the " + result.escalation.detected_by + ")" : "");
      esc.appendChild(why);
      if (result.escalation.missing_from_reply) {
        esc.appendChild(el("div", { "class": "st-warning-inline" },
          "Warning: understood as urgent, but the reply has no call button. Tell the engineers."));
      }
    } else {
      esc.textContent = "No: an ordinary question.";
    }

    var source = $("source");
    clear(source);
    if (result.source) {
      source.textContent = result.source;
      if (result.fell_back) {
        source.appendChild(el("span", { "class": "st-muted" },
          " (the clinic's contact details: the page has no answer to this question)"));
      }
    } else {
      source.appendChild(el("span", { "class": "st-muted" },
        result.escalation ? "None (a safety message, not an answer from the page)" : "None: the answer is not from the page"));
    }

    var warning = $("low-warning");
    if (result.low_confidence) {
      warning.hidden = false;
      warning.textContent = "Low confidence: the assistant is only " + percent(result.best_confidence) +
        " sure what this question means" +
        (result.threshold !== null && result.threshold !== undefined
          ? " (below its " + percent(result.threshold) + " limit)" : "") +
        ". Visitors who ask like this may get a wrong answer or \"I don't have that information\".";
    } else {
      warning.hidden = true;
      warning.textContent = "";
    }

    // Save as test: pre-filled with what the assistant understood.
    $("save-question").textContent = result.question;
    if (intent.name && meta.intents.indexOf(intent.name) >= 0) {
      $("save-intent").value = intent.name;
    }
    if (result.escalation) {
      $("expect-level").checked = true;
      $("save-level").value = result.escalation.level;
    } else {
      $("expect-intent").checked = true;
    }
    $("save-status").textContent = "";
  }

  // ------------------------------------------------------------------------------------------
  // Asking
  // ------------------------------------------------------------------------------------------

  function ask(question, shownAs) {
    question = String(question || "").trim();
    if (state.busy) {
      $("ask-status").textContent = "Please wait for the answer to the last question.";
      return;
    }
    if (!question) {
      $("ask-status").textContent = "Type a question first.";
      $("question").focus();
      return;
    }
    var conversation = $("conversation").checked;
    state.busy = true;
    $("ask-button").disabled = true;
    $("ask-status").textContent = "Asking the assistant…";
    state.pending.then(function () {
      return api("POST", "ask", { question: question, conversation: conversation });
    }).then(function (result) {
      state.last = result;
      if (!conversation) {
        state.transcript = [];
      }
      state.transcript.push({ who: "user", text: shownAs || question });
      (result.reply || []).forEach(function (m) {
        state.transcript.push({ who: "bot", text: m.text, buttons: m.buttons, escalation: m.escalation });
      });
      $("result").hidden = false;
      renderTranscript();
      renderWhy(result);
      $("ask-status").textContent = conversation
        ? "Answered (conversation mode, question " + result.turn + ")."
        : "Answered.";
    }).catch(function (error) {
      $("ask-status").textContent = "Could not ask: " + error.message;
    }).then(function () {
      state.busy = false;
      $("ask-button").disabled = false;
    });
  }

  function reset(quiet) {
    state.transcript = [];
    renderTranscript();
    var request = api("POST", "reset", {});
    state.pending = request.catch(function () {});
    request.then(function (data) {
      if (quiet !== true) {
        $("ask-status").textContent = data.message || "Started over.";
        $("question").value = "";
        $("question").focus();
      }
    }).catch(function (error) {
      $("ask-status").textContent = "Could not start over: " + error.message;
    });
  }

  // ------------------------------------------------------------------------------------------
  // Save as test
  // ------------------------------------------------------------------------------------------

  function saveCase(event) {
    event.preventDefault();
    if (!state.last) {
      return;
    }
    var body = { question: state.last.question };
    if ($("expect-level").checked) {
      body.level = $("save-level").value;
    } else {
      body.intent = $("save-intent").value;
    }
    $("save-status").textContent = "Saving…";
    api("POST", "cases", body).then(function (data) {
      var c = data.case || {};
      $("save-status").textContent = data.message + " (" + (c.intent ? "understood as " + c.intent
        : "escalated as " + c.level) + ")";
    }).catch(function (error) {
      $("save-status").textContent = "Not saved: " + error.message;
    });
  }

  // ------------------------------------------------------------------------------------------
  // A list of questions
  // ------------------------------------------------------------------------------------------

  function runBatch(event) {
    event.preventDefault();
    var input = $("batch-file");
    if (!input.files || !input.files.length) {
      $("batch-status").textContent = "Choose a file first.";
      return;
    }
    var form = new FormData();
    form.append("file", input.files[0], input.files[0].name);
    $("batch-result").hidden = true;
    $("batch-status").textContent = "Uploading…";
    api("POST", "batch", form, true).then(function (data) {
      $("batch-progress").hidden = false;
      $("batch-bar").max = data.total;
      $("batch-bar").value = 0;
      $("batch-label").textContent = "0 of " + data.total + " questions done";
      $("batch-status").textContent = "Running " + data.total + " questions…";
      poll(data.job);
    }).catch(function (error) {
      $("batch-status").textContent = "Could not run the list: " + error.message;
    });
  }

  function poll(job) {
    api("GET", "batch/" + job).then(function (data) {
      $("batch-bar").value = data.done;
      $("batch-label").textContent = data.done + " of " + data.total + " questions done";
      if (data.status === "running") {
        window.setTimeout(function () { poll(job); }, 700);
        return;
      }
      if (data.status === "failed") {
        $("batch-status").textContent = data.error || "The list could not be run.";
        return;
      }
      $("batch-status").textContent = "Done.";
      showBatch(job, data);
    }).catch(function (error) {
      $("batch-status").textContent = "Lost track of the list: " + error.message;
    });
  }

  function showBatch(job, data) {
    $("batch-summary").textContent = data.summary_line + ".";
    $("batch-csv").href = "/staff/api/batch/" + job + "/report.csv";
    $("batch-html").href = "/staff/api/batch/" + job + "/report.html";
    var body = $("batch-rows");
    clear(body);
    (data.rows || []).forEach(function (row) {
      var tr = el("tr", { "class": "st-row-" + String(row.result).replace(/\s+/g, "-") });
      tr.appendChild(el("td", {}, row.question));
      tr.appendChild(el("td", { "class": "st-reply" }, row.reply));
      var intent = el("td");
      intent.appendChild(el("code", {}, row.intent));
      tr.appendChild(intent);
      var sure = el("td", {}, percent(row.confidence));
      if (row["low confidence"] === "yes") {
        sure.appendChild(el("strong", { "class": "st-low" }, " low"));
      }
      tr.appendChild(sure);
      tr.appendChild(el("td", {}, row["escalation level"] || "—"));
      tr.appendChild(el("td", {}, row["source section"] || "—"));
      tr.appendChild(el("td", {}, row.result));
      body.appendChild(tr);
    });
    $("batch-result").hidden = false;
  }

  // ------------------------------------------------------------------------------------------
  // What visitors asked that the assistant could not answer
  // ------------------------------------------------------------------------------------------

  function loadUnanswered() {
    $("unanswered-status").textContent = "Loading…";
    api("GET", "unanswered").then(function (data) {
      var body = $("unanswered-rows");
      clear(body);
      (data.items || []).forEach(function (item) {
        var tr = el("tr");
        var when = new Date(item.timestamp * 1000);
        tr.appendChild(el("td", {}, isNaN(when) ? item.when : when.toLocaleString()));
        tr.appendChild(el("td", {}, item.text));
        tr.appendChild(el("td", {}, (item.why || []).join(", ")));
        var guess = el("td");
        if (item.intent) {
          guess.appendChild(el("code", {}, item.intent));
          guess.appendChild(document.createTextNode(" " + percent(item.confidence)));
        }
        tr.appendChild(guess);
        var actions = el("td");
        var tryIt = el("button", { "type": "button", "class": "st-button st-small" }, "Try it");
        tryIt.addEventListener("click", function () {
          $("question").value = item.text;
          $("conversation").checked = false;
          ask(item.text);
          $("question").scrollIntoView({ block: "center" });
        });
        actions.appendChild(tryIt);
        tr.appendChild(actions);
        body.appendChild(tr);
      });
      $("unanswered-table").hidden = !(data.items && data.items.length);
      $("unanswered-status").textContent = data.items && data.items.length
        ? data.items.length + " messages."
        : "Nothing yet: every visitor message so far was answered.";
    }).catch(function (error) {
      $("unanswered-status").textContent = "Could not load the list: " + error.message;
    });
  }

  // ------------------------------------------------------------------------------------------
  // Start
  // ------------------------------------------------------------------------------------------

  function fillSelect(select, values) {
    clear(select);
    values.forEach(function (v) {
      select.appendChild(el("option", { value: v }, v));
    });
  }

  function start() {
    $("ask-form").addEventListener("submit", function (event) {
      event.preventDefault();
      ask($("question").value);
    });
    $("reset-button").addEventListener("click", reset);
    // Switching the mode starts a new conversation: the preview shows only what it remembers.
    $("conversation").addEventListener("change", function () {
      reset(true);
      $("ask-status").textContent = $("conversation").checked
        ? "Conversation mode: the next questions are one conversation."
        : "Each question is now asked as a new visitor.";
    });
    $("save-form").addEventListener("submit", saveCase);
    $("batch-form").addEventListener("submit", runBatch);
    $("unanswered-refresh").addEventListener("click", loadUnanswered);
    $("save-intent").addEventListener("change", function () { $("expect-intent").checked = true; });
    $("save-level").addEventListener("change", function () { $("expect-level").checked = true; });
    renderTranscript();
    api("GET", "meta").then(function (data) {
      meta = data;
      fillSelect($("save-intent"), data.intents || []);
      fillSelect($("save-level"), data.levels || []);
    }).catch(function (error) {
      $("ask-status").textContent = "Could not load the settings: " + error.message;
    });
    loadUnanswered();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
