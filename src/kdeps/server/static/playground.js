// The kdeps playground: builds a request for one of the agent's routes, sends it, shows the answer
// (streamed when asked), the run's trace, the session and a curl line. Request and response data are
// only ever written with textContent, never parsed as HTML.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var agent = null;
  var routes = [];
  var TOKEN_KEY = "kdeps.token";

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function authHeaders() {
    var t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function loadAgent() {
    return fetch("/_kdeps/agent", { headers: authHeaders() }).then(function (r) {
      if (r.status === 401) {
        $("auth").hidden = false;
        $("status").textContent = "This server needs its bearer token (KDEPS_API_AUTH_TOKEN).";
        return null;
      }
      return r.json();
    }).then(function (data) {
      if (!data) { return; }
      agent = data;
      $("auth").hidden = !data.auth;
      $("agent-name").textContent = data.name || "agent";
      $("agent-desc").textContent = data.description || "";
      document.title = (data.name || "agent") + " · kdeps playground";
      routes = data.routes || [];
      var select = $("route");
      clear(select);
      routes.forEach(function (r, i) { select.appendChild(el("option", { value: String(i) }, r.method + " " + r.path)); });
      var first = routes.findIndex(function (r) { return r.method !== "GET"; });
      select.value = String(first < 0 ? 0 : first);
      pickRoute();
    });
  }

  function route() { return routes[Number($("route").value)] || null; }

  function inputId(name) { return "in-" + name.replace(/[^A-Za-z0-9_-]/g, "_"); }

  function pickRoute() {
    var r = route();
    var box = $("inputs");
    Array.prototype.slice.call(box.querySelectorAll(".field")).forEach(function (n) { n.remove(); });
    if (!r) { return; }
    var fields = (r.pathParams || []).map(function (p) { return { name: p, schema: { type: "string" }, required: true, path: true }; })
      .concat(r.inputs || []);
    fields.forEach(function (f) { box.appendChild(inputFor(f)); });
    $("no-inputs").hidden = fields.length > 0;
    $("upload").hidden = !(r.uploads && r.uploads.length);
    if (r.uploads && r.uploads.length) { $("file-field").value = r.uploads[0]; }
    $("stream").checked = !!r.streams;
    $("body-field").hidden = r.method === "GET" || r.method === "HEAD";
    $("body").value = "{}";
    syncBody();
  }

  function inputFor(f) {
    var s = f.schema || {};
    var wrap = el("div", { "class": "field" });
    var id = inputId(f.name);
    var label = el("label", { "for": id }, f.name + (f.required ? " (required)" : "") + (f.path ? " (path)" : ""));
    wrap.appendChild(label);
    var input;
    if (Array.isArray(s.enum)) {
      input = el("select", { id: id });
      input.appendChild(el("option", { value: "" }, "—"));
      s.enum.forEach(function (v) { input.appendChild(el("option", { value: JSON.stringify(v) }, String(v))); });
    } else if (s.type === "boolean") {
      input = el("select", { id: id });
      ["", "true", "false"].forEach(function (v) { input.appendChild(el("option", { value: v }, v || "—")); });
    } else if (s.type === "object" || s.type === "array") {
      input = el("textarea", { id: id, rows: "3", spellcheck: "false", placeholder: s.type === "array" ? "[ ]" : "{ }" });
    } else {
      var type = s.type === "number" || s.type === "integer" ? "number"
        : s.format === "email" ? "email" : s.format === "uri" ? "url" : "text";
      input = el("input", { id: id, type: type, spellcheck: "false" });
      if (s.type === "integer") { input.setAttribute("step", "1"); }
    }
    input.dataset.name = f.name;
    input.dataset.kind = f.path ? "path" : (s.type || (Array.isArray(s.enum) ? "enum" : "string"));
    if (f.required) { input.required = true; input.setAttribute("aria-required", "true"); }
    if (s.description) { var hint = el("p", { "class": "hint", id: id + "-hint" }, s.description); input.setAttribute("aria-describedby", id + "-hint"); wrap.appendChild(input); wrap.appendChild(hint); }
    else { wrap.appendChild(input); }
    input.addEventListener("input", syncBody);
    input.addEventListener("change", syncBody);
    return wrap;
  }

  function fieldValue(input) {
    var raw = input.value;
    if (raw === "") { return undefined; }
    var kind = input.dataset.kind;
    try {
      if (kind === "number" || kind === "integer") { return Number(raw); }
      if (kind === "boolean" || kind === "enum" || kind === "object" || kind === "array") { return JSON.parse(raw); }
    } catch (e) { return raw; }
    return raw;
  }

  function formValues() {
    var out = {}, path = {};
    Array.prototype.forEach.call($("inputs").querySelectorAll("[data-name]"), function (input) {
      var v = fieldValue(input);
      if (v === undefined) { return; }
      if (input.dataset.kind === "path") { path[input.dataset.name] = String(v); } else { out[input.dataset.name] = v; }
    });
    return { values: out, path: path };
  }

  function syncBody() {
    var current = {};
    try { current = JSON.parse($("body").value || "{}"); } catch (e) { return; }
    if (typeof current !== "object" || current === null || Array.isArray(current)) { return; }
    var form = formValues().values;
    Array.prototype.forEach.call($("inputs").querySelectorAll("[data-name]"), function (input) {
      if (input.dataset.kind !== "path") { delete current[input.dataset.name]; }
    });
    Object.keys(form).forEach(function (k) { current[k] = form[k]; });
    $("body").value = JSON.stringify(current, null, 2);
  }

  // -- building the request -----------------------------------------------------------------------
  function buildRequest() {
    var r = route();
    var form = formValues();
    var url = r.path.split("/").map(function (seg) {
      return seg.charAt(0) === ":" ? encodeURIComponent(form.path[seg.slice(1)] || "") : seg;
    }).join("/");
    var headers = { "X-Kdeps-Trace": "1" };
    var req = { method: r.method, url: url, headers: headers, body: null, json: null, file: null };
    if (r.method === "GET" || r.method === "HEAD") {
      var q = new URLSearchParams();
      Object.keys(form.values).forEach(function (k) {
        var v = form.values[k];
        q.append(k, typeof v === "string" ? v : JSON.stringify(v));
      });
      if (q.toString()) { req.url += "?" + q.toString(); }
    } else {
      var json;
      try { json = JSON.parse($("body").value || "{}"); } catch (e) { throw new Error("The JSON body is not valid JSON: " + e.message); }
      req.json = json;
      var file = $("file").files && $("file").files[0];
      if (!$("upload").hidden && file) {
        var data = new FormData();
        if (json && typeof json === "object" && !Array.isArray(json)) {
          Object.keys(json).forEach(function (k) { var v = json[k]; data.append(k, typeof v === "string" ? v : JSON.stringify(v)); });
        }
        data.append($("file-field").value || "file", file, file.name);
        req.body = data;
        req.file = file;
      } else {
        headers["Content-Type"] = "application/json";
        req.body = JSON.stringify(json);
      }
    }
    if ($("stream").checked) { headers.Accept = "text/event-stream"; }
    return req;
  }

  function quote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

  function curlLine(req) {
    var parts = ["curl", "-sS"];
    if ($("stream").checked) { parts.push("-N"); }
    if (req.method !== "GET") { parts.push("-X", req.method); }
    parts.push(quote(location.origin + req.url));
    if (agent && agent.auth) { parts.push("-H", '"Authorization: Bearer $KDEPS_API_AUTH_TOKEN"'); }
    if ($("stream").checked) { parts.push("-H", quote("Accept: text/event-stream")); }
    if (req.file) {
      Object.keys(req.json || {}).forEach(function (k) {
        var v = req.json[k];
        parts.push("--form-string", quote(k + "=" + (typeof v === "string" ? v : JSON.stringify(v))));
      });
      parts.push("-F", quote(($("file-field").value || "file") + "=@" + req.file.name));
    } else if (req.json !== null) {
      parts.push("-H", quote("Content-Type: application/json"), "-d", quote(JSON.stringify(req.json)));
    }
    return parts.join(" ");
  }

  function copyCurl() {
    var line;
    try { line = curlLine(buildRequest()); } catch (e) { showError(e.message); return; }
    var pre = $("curl");
    pre.textContent = line;
    pre.hidden = false;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(line).then(function () { $("status").textContent = "curl command copied."; },
        function () { $("status").textContent = "curl command shown below (copy it by hand)."; });
    }
  }

  // -- showing the answer -------------------------------------------------------------------------
  function showError(message) {
    var box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function resetOutput() {
    showError("");
    $("answer").textContent = "";
    $("answer").dataset.deltas = "0";
    $("body-out").textContent = "";
    $("headers-out").textContent = "";
    clear($("trace").tBodies[0]);
  }

  function showHeaders(resp) {
    var lines = [];
    resp.headers.forEach(function (value, name) { if (name !== "x-kdeps-trace") { lines.push(name + ": " + value); } });
    $("headers-out").textContent = lines.join("\n");
    var sid = resp.headers.get("x-session-id");
    if (sid) { $("session").textContent = "Active session " + sid.slice(0, 8) + "… (cookie kdeps_session, HttpOnly)."; }
  }

  var traceRows = [];
  function showTrace(trace) {
    traceRows = (trace && trace.resources) || [];
    renderTrace(null);
  }

  function renderTrace(failed) {
    var body = $("trace").tBodies[0];
    clear(body);
    var rows = traceRows.slice();
    if (failed && !rows.some(function (r) { return r.resource === failed.resource; })) {
      rows.push({ resource: failed.resource, status: "error", error: failed.message });
    }
    rows.forEach(function (r) {
      var tr = el("tr", { "data-resource": r.resource });
      if (r.status === "error" || (failed && failed.resource === r.resource)) { tr.className = "failed"; }
      var model = [r.backend, r.model].filter(Boolean).join(" / ");
      var tokens = r.input_tokens !== undefined || r.output_tokens !== undefined
        ? (r.input_tokens || 0) + " / " + (r.output_tokens || 0) : "";
      [r.resource, r.status || "", r.durationMs !== undefined && r.durationMs !== null ? r.durationMs + " ms" : "",
        model, tokens, r.finish_reason || ""].forEach(function (cell, i) {
        tr.appendChild(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, cell));
      });
      body.appendChild(tr);
    });
  }

  function answerOf(body) {
    if (!body || typeof body !== "object") { return typeof body === "string" ? body : ""; }
    var r = body.data;
    if (typeof r === "string") { return r; }
    if (r && typeof r === "object") {
      var k = ["answer", "text", "content", "message", "result"].find(function (key) { return typeof r[key] === "string"; });
      if (k) { return r[k]; }
    }
    return "";
  }

  function showBody(body, status) {
    $("body-out").textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
    if (!Number($("answer").dataset.deltas)) { $("answer").textContent = answerOf(body); }
    if (status >= 400 || (body && body.success === false && body.error)) {
      var err = (body && body.error) || {};
      if (typeof err !== "object") { err = { message: String(err) }; }
      var resource = err.resource || err.resourceId;
      var details = err.details && Array.isArray(err.details.errors)
        ? "\n" + err.details.errors.map(function (e) { return "• " + (e.message || JSON.stringify(e)); }).join("\n") : "";
      showError("HTTP " + status + (resource ? " in resource " + resource : "") + ": " + (err.message || "request failed") + details);
      if (resource) { renderTrace({ resource: resource, message: err.message }); }
    }
  }

  function readEvents(resp) {
    var reader = resp.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var answer = $("answer");
    function handle(block) {
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { name = line.slice(6).trim(); }
        else if (line.indexOf("data:") === 0) { data.push(line.slice(5).replace(/^ /, "")); }
      });
      if (!data.length) { return; }
      var payload;
      try { payload = JSON.parse(data.join("\n")); } catch (e) { payload = data.join("\n"); }
      if (name === "delta") {
        answer.textContent += (payload && payload.text) || "";
        answer.dataset.deltas = String(Number(answer.dataset.deltas || 0) + 1);
      } else if (name === "trace") {
        showTrace(payload);
      } else if (name === "result") {
        showBody(payload, resp.status);
      } else if (name === "error") {
        showBody(payload, (payload && payload.status) || 500);
      }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { if (buffer.trim()) { handle(buffer); } return; }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var at;
        while ((at = buffer.indexOf("\n\n")) >= 0) { handle(buffer.slice(0, at)); buffer = buffer.slice(at + 2); }
        return pump();
      });
    }
    return pump();
  }

  function send(event) {
    event.preventDefault();
    var req;
    try { req = buildRequest(); } catch (e) { showError(e.message); return; }
    resetOutput();
    var button = $("send");
    button.disabled = true;
    var started = performance.now();
    $("status").textContent = "Sending " + req.method + " " + req.url + " …";
    var headers = Object.assign({}, req.headers, authHeaders());
    fetch(req.url, { method: req.method, headers: headers, body: req.body, credentials: "same-origin" }).then(function (resp) {
      showHeaders(resp);
      var traced = resp.headers.get("x-kdeps-trace");
      if (traced) { try { showTrace(JSON.parse(traced)); } catch (e) { /* not ours */ } }
      var done = function () {
        $("status").textContent = "HTTP " + resp.status + " " + resp.statusText + " in " + Math.round(performance.now() - started) + " ms";
      };
      if ((resp.headers.get("content-type") || "").indexOf("text/event-stream") === 0) {
        $("status").textContent = "HTTP " + resp.status + " streaming…";
        return readEvents(resp).then(done);
      }
      return resp.text().then(function (text) {
        var body = text;
        try { body = JSON.parse(text); } catch (e) { /* shown as text */ }
        showBody(body, resp.status);
        done();
      });
    }).catch(function (e) {
      showError("The request failed: " + e.message);
      $("status").textContent = "No answer.";
    }).finally(function () { button.disabled = false; });
  }

  function newSession() {
    fetch("/_kdeps/session/new", { method: "POST", headers: { "X-Kdeps-Playground": "1" }, credentials: "same-origin" })
      .then(function (r) {
        $("session").textContent = r.ok ? "No session: the next request starts a new one." : "Could not end the session (HTTP " + r.status + ").";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("route").addEventListener("change", pickRoute);
    $("request").addEventListener("submit", send);
    $("copy-curl").addEventListener("click", copyCurl);
    $("new-session").addEventListener("click", newSession);
    $("token").value = token();
    $("token").addEventListener("change", function () {
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      loadAgent();
    });
    loadAgent();
  });
})();
