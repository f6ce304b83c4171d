/*
 * The clinic's chat widget: a launcher button and a chat panel that talk to a Rasa server through
 * its REST channel (POST {rasaUrl}/webhooks/rest/webhook). Plain JavaScript, no dependencies, no
 * build step. Add it to a page with one tag:
 *
 *   <script src="https://example.org/static/widget.js" defer
 *           data-rasa-url="https://chat.example.org"
 *           data-clinic-phone="+15555550123"></script>
 *
 * Settings (data-* attributes on the script tag):
 *   data-rasa-url            the Rasa server (required)
 *   data-clinic-phone        the number to call when the assistant can't be reached (E.164 best)
 *   data-clinic-phone-label  how to show that number (default: formatted from its digits)
 *   data-timeout-ms          how long to wait for an answer (default 15000)
 *   data-title               the panel's title (default "Clinic assistant")
 *   data-welcome             the line shown in an empty conversation
 *   data-stylesheet          the stylesheet's URL (default: widget.css next to this script),
 *                            or "none" when the page links it itself
 *
 * Safe by construction: every text from the server or the visitor goes into the page with
 * textContent, never as HTML; nothing is styled inline (the page's CSP can forbid it).
 * The conversation (sender id and transcript) lives in sessionStorage, so it survives reloads
 * and moving between pages of the site, and ends with the browser tab.
 */
(function () {
  "use strict";

  var MAX_LENGTH = 1000;           // characters in a visitor's message
  var MAX_ITEMS = 200;             // transcript entries kept in sessionStorage
  var LEVELS = ["emergency", "urgent", "handoff"];

  var script = document.currentScript || document.querySelector("script[data-rasa-url]");
  if (!script || window.__clinicChatWidget) {
    return;
  }
  window.__clinicChatWidget = true;

  // ------------------------------------------------------------------------------------------
  // Settings
  // ------------------------------------------------------------------------------------------

  function attr(name, fallback) {
    var value = script.getAttribute("data-" + name);
    return value === null || value.trim() === "" ? fallback : value.trim();
  }

  var rasaUrl = (function () {
    try {
      var url = new URL(attr("rasa-url", ""), window.location.href);
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return null;
      }
      return url.href.replace(/\/+$/, "");
    } catch (e) {
      return null;
    }
  })();
  var timeoutMs = Math.min(Math.max(parseInt(attr("timeout-ms", "15000"), 10) || 15000, 100), 120000);
  var clinicPhone = attr("clinic-phone", "");
  var clinicPhoneLabel = attr("clinic-phone-label", "");
  var title = attr("title", "Clinic assistant");
  var welcome = attr("welcome", "Hello! Type your question below.");
  var storageKey = "clinicChat:v1:" + (rasaUrl || "");

  // ------------------------------------------------------------------------------------------
  // Phone numbers: digits only in links; shown as (555) 555-0123 for North American numbers
  // ------------------------------------------------------------------------------------------

  function digitsOf(phone) {
    return String(phone || "").replace(/\D/g, "");
  }

  function telHref(phone) {
    var raw = String(phone || "").trim();
    var digits = digitsOf(raw);
    if (!digits) {
      return null;
    }
    if (raw.charAt(0) === "+") {
      return "tel:+" + digits;
    }
    return "tel:" + (digits.length === 10 ? "+1" + digits : digits);
  }

  function formatPhone(phone) {
    var digits = digitsOf(phone);
    if (digits.length === 11 && digits.charAt(0) === "1") {
      digits = digits.slice(1);
    }
    if (digits.length === 10) {
      return "(" + digits.slice(0, 3) + ") " + digits.slice(3, 6) + "-" + digits.slice(6);
    }
    return (String(phone).trim().charAt(0) === "+" ? "+" : "") + digits;
  }

  function clinicLabel() {
    return clinicPhoneLabel || formatPhone(clinicPhone);
  }

  // "Call the clinic: (555) 555-0123" as a link, the number kept on one line.
  function callLink(className, href, label, number) {
    var link = el("a", { "class": "rw-call " + className, "href": href }, label);
    if (number) {
      link.appendChild(el("span", { "class": "rw-nowrap" }, number));
    }
    return link;
  }

  // ------------------------------------------------------------------------------------------
  // Storage: sessionStorage when the browser allows it, memory otherwise
  // ------------------------------------------------------------------------------------------

  var storage = (function () {
    try {
      var s = window.sessionStorage;
      s.setItem("clinicChat:probe", "1");
      s.removeItem("clinicChat:probe");
      return s;
    } catch (e) {
      return null;
    }
  })();

  function newSenderId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function cleanButtons(buttons) {
    if (!Array.isArray(buttons)) {
      return [];
    }
    return buttons.filter(function (b) {
      return b && typeof b.title === "string" && b.title.trim() && typeof b.payload === "string" &&
        b.payload.trim();
    }).slice(0, 8).map(function (b) {
      return { title: b.title.slice(0, 200), payload: b.payload.slice(0, MAX_LENGTH) };
    });
  }

  function cleanEscalation(custom) {
    if (!custom || typeof custom !== "object" || custom.type !== "escalation") {
      return null;
    }
    return {
      type: "escalation",
      level: LEVELS.indexOf(custom.level) >= 0 ? custom.level : "urgent",
      phone: typeof custom.phone === "string" && digitsOf(custom.phone) ? custom.phone : ""
    };
  }

  // One transcript entry from a bot message of the REST channel (or a stored entry).
  function cleanItem(raw, who) {
    if (!raw || typeof raw !== "object") {
      return null;
    }
    var item = { who: who };
    if (typeof raw.text === "string" && raw.text.trim()) {
      item.text = raw.text.slice(0, 5000);
    }
    var buttons = cleanButtons(raw.buttons);
    if (buttons.length) {
      item.buttons = buttons;
    }
    var escalation = cleanEscalation(raw.custom || raw.escalation);
    if (escalation) {
      item.escalation = escalation;
    }
    return item.text || item.buttons || item.escalation ? item : null;
  }

  function load() {
    try {
      var data = JSON.parse(storage ? storage.getItem(storageKey) || "null" : "null");
      if (data && typeof data.sender === "string" && Array.isArray(data.transcript)) {
        return {
          sender: data.sender,
          transcript: data.transcript.map(function (entry) {
            var who = entry && entry.who === "user" ? "user" : "bot";
            return who === "user" ? (typeof entry.text === "string" ? { who: who, text: entry.text } : null)
              : cleanItem(entry, who);
          }).filter(Boolean)
        };
      }
    } catch (e) { /* unreadable: start afresh */ }
    return { sender: newSenderId(), transcript: [] };
  }

  var state = load();
  state.busy = false;
  state.generation = 0;     // bumped by "start over": answers to the old conversation are dropped

  function save() {
    if (!storage) {
      return;
    }
    try {
      storage.setItem(storageKey, JSON.stringify({
        sender: state.sender,
        transcript: state.transcript.slice(-MAX_ITEMS)
      }));
    } catch (e) { /* full or disabled: the chat goes on without it */ }
  }

  // ------------------------------------------------------------------------------------------
  // DOM helpers (text only ever through textContent)
  // ------------------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function icon(pathData) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "rw-icon");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }

  var ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  var ICON_CLOSE = "M6 6l12 12M18 6L6 18";

  var reducedMotion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

  // ------------------------------------------------------------------------------------------
  // The widget
  // ------------------------------------------------------------------------------------------

  var ui = {};

  function build() {
    var uid = "rw-" + Math.random().toString(36).slice(2, 8);
    var root = el("aside", { "class": "rw-root", "aria-label": "Chat with the " + title.toLowerCase() });

    var launcher = el("button", {
      "type": "button", "class": "rw-launcher", "aria-expanded": "false", "aria-controls": uid + "-panel"
    });
    launcher.appendChild(icon(ICON_CHAT));
    launcher.appendChild(el("span", { "class": "rw-launcher-text" }, "Questions? Chat with us"));

    var panel = el("section", {
      "id": uid + "-panel", "class": "rw-panel", "role": "dialog", "aria-modal": "false",
      "aria-labelledby": uid + "-title", "aria-describedby": uid + "-notice"
    });
    panel.hidden = true;

    var header = el("div", { "class": "rw-header" });
    header.appendChild(el("h2", { "id": uid + "-title", "class": "rw-title" }, title));
    var restart = el("button", { "type": "button", "class": "rw-restart" }, "Start over");
    var close = el("button", { "type": "button", "class": "rw-close" });
    close.appendChild(icon(ICON_CLOSE));
    close.appendChild(el("span", { "class": "rw-sr-only" }, "Close chat"));
    header.appendChild(restart);
    header.appendChild(close);

    var notice = el("p", { "id": uid + "-notice", "class": "rw-notice" },
      "I'm an automated assistant, and my answers are not medical advice. In an emergency, ");
    notice.appendChild(el("a", { "href": "tel:911" }, "call 911"));
    notice.appendChild(document.createTextNode("."));

    var log = el("div", {
      "class": "rw-log", "role": "log", "aria-live": "off", "aria-label": "Conversation", "tabindex": "0"
    });

    var form = el("form", { "class": "rw-form", "novalidate": "" });
    var label = el("label", { "for": uid + "-input", "class": "rw-sr-only" }, "Your message");
    var input = el("input", {
      "id": uid + "-input", "class": "rw-input", "type": "text", "name": "message",
      "maxlength": String(MAX_LENGTH), "autocomplete": "off", "enterkeyhint": "send",
      "placeholder": "Type your question", "aria-describedby": uid + "-hint"
    });
    var send = el("button", { "type": "submit", "class": "rw-send" }, "Send");
    var hint = el("p", { "id": uid + "-hint", "class": "rw-hint", "aria-live": "polite" });
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(send);

    // New messages are read out from here (the transcript itself is not live, so nothing is
    // read twice): outside the panel, so it exists before the panel is shown.
    var announcer = el("div", { "class": "rw-sr-only", "aria-live": "polite", "aria-atomic": "true",
      "data-rw-announcer": "" });

    panel.appendChild(header);
    panel.appendChild(notice);
    panel.appendChild(log);
    panel.appendChild(form);
    panel.appendChild(hint);
    root.appendChild(panel);
    root.appendChild(launcher);
    root.appendChild(announcer);

    ui = { root: root, launcher: launcher, panel: panel, restart: restart, close: close, log: log,
           form: form, input: input, hint: hint, announcer: announcer };

    launcher.addEventListener("click", function () {
      if (panel.hidden) {
        openPanel();
      } else {
        closePanel();
      }
    });
    close.addEventListener("click", closePanel);
    restart.addEventListener("click", startOver);
    root.addEventListener("keydown", function (event) {
      if ((event.key === "Escape" || event.key === "Esc") && !panel.hidden) {
        event.preventDefault();
        closePanel();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sendMessage(input.value)) {
        input.value = "";
      }
    });
    input.addEventListener("input", function () {
      if (hint.textContent && input.value.length <= MAX_LENGTH) {
        hint.textContent = "";
      }
    });

    document.body.appendChild(root);
    renderTranscript();
  }

  function openPanel() {
    ui.panel.hidden = false;
    ui.root.classList.add("rw-is-open");
    ui.launcher.setAttribute("aria-expanded", "true");
    scrollToEnd();
    ui.input.focus();
  }

  function closePanel() {
    ui.panel.hidden = true;
    ui.root.classList.remove("rw-is-open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  function scrollBehavior() {
    return reducedMotion && reducedMotion.matches ? "auto" : "smooth";
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // Shows the start of the first new answer (a long answer is read from its top), and all of
  // the call buttons when there are some, even if the answer's first lines scroll away for them.
  function scrollToShow(node, mustShow) {
    var target = node.offsetTop - 8;
    if (mustShow) {
      var bottom = mustShow.offsetTop + mustShow.offsetHeight + 8 - ui.log.clientHeight;
      target = Math.min(mustShow.offsetTop - 8, Math.max(target, bottom));
    }
    target = Math.max(0, Math.min(target, ui.log.scrollHeight - ui.log.clientHeight));
    if (typeof ui.log.scrollTo === "function") {
      ui.log.scrollTo({ top: target, behavior: scrollBehavior() });
    } else {
      ui.log.scrollTop = target;
    }
  }

  // After a button that removes itself: keyboard users go on typing in the input; a tap or click
  // leaves focus in the panel without opening a phone's keyboard.
  function keepFocus(event) {
    if (event && event.detail === 0) {
      ui.input.focus();
    } else {
      ui.log.focus({ preventScroll: true });
    }
  }

  var announceTimer = null;
  function announce(text) {
    // Cleared first and set a moment later, so the same words twice are read twice.
    ui.announcer.textContent = "";
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () {
      ui.announcer.textContent = text;
    }, 50);
  }

  // ------------------------------------------------------------------------------------------
  // Rendering the transcript
  // ------------------------------------------------------------------------------------------

  function renderEscalation(escalation) {
    var box = el("div", { "class": "rw-escalation rw-escalation-" + escalation.level });
    if (escalation.level === "emergency") {
      box.appendChild(el("p", { "class": "rw-911-notice" },
        "If someone may be in danger, call 911 now."));
      box.appendChild(callLink("rw-call-911", "tel:911", "Call 911"));
    }
    var phone = escalation.phone || clinicPhone;
    var href = telHref(phone);
    if (href) {
      box.appendChild(callLink("rw-call-clinic", href, "Call the clinic: ",
        escalation.phone ? formatPhone(phone) : clinicLabel()));
    }
    return box;
  }

  function escalationWords(escalation) {
    var words = escalation.level === "emergency" ? " If someone may be in danger, call 911 now." : "";
    var phone = escalation.phone || clinicPhone;
    if (telHref(phone)) {
      words += " Call the clinic: " + (escalation.phone ? formatPhone(phone) : clinicLabel()) + ".";
    }
    return words;
  }

  function renderQuickReplies(buttons) {
    var group = el("div", { "class": "rw-quick", "role": "group", "aria-label": "Suggested questions" });
    buttons.forEach(function (button) {
      var node = el("button", { "type": "button", "class": "rw-quick-button" }, button.title);
      node.addEventListener("click", function (event) {
        if (sendMessage(button.payload, button.title)) {
          keepFocus(event);  // the suggestions are gone with the click
        }
      });
      group.appendChild(node);
    });
    return group;
  }

  function renderItem(item, withButtons) {
    var node = el("div", { "class": "rw-msg rw-msg-" + item.who });
    if (item.text) {
      var bubble = el("p", { "class": "rw-bubble" });
      bubble.appendChild(el("span", { "class": "rw-sr-only" }, item.who === "user" ? "You: " : "Assistant: "));
      bubble.appendChild(document.createTextNode(item.text));
      node.appendChild(bubble);
    }
    if (item.escalation) {
      node.appendChild(renderEscalation(item.escalation));
    }
    if (item.buttons && withButtons) {
      node.appendChild(renderQuickReplies(item.buttons));
    }
    return node;
  }

  function renderTranscript() {
    ui.log.textContent = "";
    if (!state.transcript.length) {
      ui.log.appendChild(el("p", { "class": "rw-welcome" }, welcome));
      return;
    }
    var lastUser = -1;
    state.transcript.forEach(function (item, i) {
      if (item.who === "user") {
        lastUser = i;
      }
    });
    state.transcript.forEach(function (item, i) {
      ui.log.appendChild(renderItem(item, i > lastUser));
    });
  }

  function addItem(item, withButtons) {
    var welcomeLine = ui.log.querySelector(".rw-welcome");
    if (welcomeLine) {
      welcomeLine.remove();
    }
    state.transcript.push(item);
    if (state.transcript.length > MAX_ITEMS) {
      state.transcript = state.transcript.slice(-MAX_ITEMS);
    }
    save();
    var node = renderItem(item, withButtons);
    ui.log.insertBefore(node, ui.log.querySelector(".rw-typing"));
    return node;
  }

  function removeAll(selector) {
    Array.prototype.forEach.call(ui.log.querySelectorAll(selector), function (node) {
      node.remove();
    });
  }

  function showTyping() {
    var node = el("div", { "class": "rw-msg rw-msg-bot rw-typing" });
    var bubble = el("p", { "class": "rw-bubble" });
    bubble.appendChild(el("span", { "class": "rw-sr-only" }, "The assistant is typing"));
    for (var i = 0; i < 3; i++) {
      bubble.appendChild(el("span", { "class": "rw-dot", "aria-hidden": "true" }));
    }
    node.appendChild(bubble);
    ui.log.appendChild(node);
    ui.log.setAttribute("aria-busy", "true");
    scrollToEnd();
  }

  function hideTyping() {
    removeAll(".rw-typing");
    ui.log.removeAttribute("aria-busy");
  }

  // The assistant can't be reached: say so, give the clinic's number, offer to try again.
  function showError(kind, message) {
    var node = el("div", { "class": "rw-msg rw-msg-bot rw-error", "data-rw-error": kind });
    var sorry = kind === "timeout"
      ? "Sorry, the assistant is taking too long to answer."
      : "Sorry, the assistant can't be reached right now.";
    var words = sorry;
    node.appendChild(el("p", { "class": "rw-bubble" }, sorry));
    var box = el("div", { "class": "rw-escalation rw-escalation-error" });
    var href = telHref(clinicPhone);
    if (href) {
      box.appendChild(el("p", {}, "To talk to someone, please call the clinic."));
      box.appendChild(callLink("rw-call-clinic", href, "Call the clinic: ", clinicLabel()));
      words += " To talk to someone, please call the clinic at " + clinicLabel() + ".";
    }
    var retry = el("button", { "type": "button", "class": "rw-retry" }, "Try again");
    retry.addEventListener("click", function (event) {
      if (state.busy) {
        return;
      }
      node.remove();
      keepFocus(event);
      request(message);
    });
    box.appendChild(retry);
    node.appendChild(box);
    ui.log.appendChild(node);
    scrollToShow(node, box);
    announce(words + " You can try again.");
  }

  // ------------------------------------------------------------------------------------------
  // Talking to Rasa
  // ------------------------------------------------------------------------------------------

  function sendMessage(text, shownAs) {
    if (state.busy) {
      ui.hint.textContent = "Please wait for the answer to your last message.";
      return false;
    }
    var message = String(text || "").trim();
    if (!message) {
      return false;
    }
    if (message.length > MAX_LENGTH) {
      ui.hint.textContent = "Please keep your message under " + MAX_LENGTH + " characters.";
      return false;
    }
    ui.hint.textContent = "";
    removeAll(".rw-quick");
    removeAll(".rw-error");
    addItem({ who: "user", text: shownAs || message }, false);
    request(message);
    return true;
  }

  function request(message) {
    if (!rasaUrl) {
      showError("unreachable", message);
      return;
    }
    var generation = state.generation;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timedOut = false;
    var timer = window.setTimeout(function () {
      timedOut = true;
      if (controller) {
        controller.abort();
      } else {
        fail(new Error("timeout"));
      }
    }, timeoutMs);
    var finished = false;

    function done() {
      if (finished || generation !== state.generation) {
        return false;
      }
      finished = true;
      window.clearTimeout(timer);
      state.busy = false;
      hideTyping();
      return true;
    }

    function fail() {
      if (done()) {
        showError(timedOut ? "timeout" : "unreachable", message);
      }
    }

    state.busy = true;
    showTyping();
    fetch(rasaUrl + "/webhooks/rest/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: state.sender, message: message }),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (messages) {
      if (!Array.isArray(messages)) {
        throw new Error("unexpected answer");
      }
      if (!done()) {
        return;
      }
      var items = messages.map(function (m) { return cleanItem(m, "bot"); }).filter(Boolean);
      var first = null;
      var calls = null;
      var words = [];
      items.forEach(function (item) {
        var node = addItem(item, true);
        first = first || node;
        calls = calls || node.querySelector(".rw-escalation");
        words.push((item.text || "") + (item.escalation ? escalationWords(item.escalation) : ""));
      });
      if (first) {
        scrollToShow(first, calls);
        var buttons = items.reduce(function (n, item) { return n + (item.buttons ? item.buttons.length : 0); }, 0);
        announce("Assistant: " + words.join(" ").trim() +
          (buttons ? " " + buttons + " suggested " + (buttons === 1 ? "question" : "questions") + " follow." : ""));
      }
    }).catch(fail);
  }

  function startOver() {
    state.generation += 1;
    state.busy = false;
    state.sender = newSenderId();
    state.transcript = [];
    save();
    hideTyping();
    ui.hint.textContent = "";
    renderTranscript();
    announce("New conversation started.");
    ui.input.value = "";
    ui.input.focus();
  }

  // ------------------------------------------------------------------------------------------
  // Start
  // ------------------------------------------------------------------------------------------

  function loadStylesheet() {
    var href = attr("stylesheet", "");
    if (href === "none") {
      return;
    }
    try {
      href = new URL(href || "widget.css", script.src || window.location.href).href;
    } catch (e) {
      return;
    }
    var present = Array.prototype.some.call(document.querySelectorAll("link[rel=stylesheet]"), function (link) {
      return link.href === href;
    });
    if (!present) {
      document.head.appendChild(el("link", { "rel": "stylesheet", "href": href }));
    }
  }

  loadStylesheet();
  if (document.body) {
    build();
  } else {
    document.addEventListener("DOMContentLoaded", build);
  }
})();
