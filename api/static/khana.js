// Khana's pages: drag and drop of scanned files, uploads with a progress bar. No inline scripts (CSP).
(function () {
  "use strict";
  var fa = document.documentElement.lang === "fa";
  function digits(s) { return fa ? String(s).replace(/\d/g, function (d) { return "۰۱۲۳۴۵۶۷۸۹"[d]; }) : String(s); }
  function size(n) {
    var mb = n / (1024 * 1024);
    return mb >= 1 ? digits(mb.toFixed(1)) + (fa ? " مگابایت" : " MB") : digits(Math.max(1, Math.round(n / 1024))) + (fa ? " کیلوبایت" : " KB");
  }
  function listFiles(input) {
    var list = input.closest("form").querySelector("[data-filelist]");
    if (!list) return;
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (f, i) {
      var li = document.createElement("li");
      var name = document.createElement("span");
      var num = document.createElement("span");
      num.textContent = digits(i + 1) + ". ";
      var fname = document.createElement("bdi");
      fname.setAttribute("dir", "auto");
      fname.textContent = f.name;
      name.appendChild(num); name.appendChild(fname);
      var sz = document.createElement("span");
      sz.className = "muted";
      sz.textContent = size(f.size);
      li.appendChild(name); li.appendChild(sz); list.appendChild(li);
    });
  }
  function setup(root) {
    root.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      if (zone.dataset.ready) return; zone.dataset.ready = "1";
      var input = zone.querySelector("input[type=file]");
      input.addEventListener("change", function () { listFiles(input); });
      ["dragenter", "dragover"].forEach(function (ev) {
        zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (ev) {
        zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (e) {
        if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; listFiles(input); }
      });
    });
    root.querySelectorAll("[data-chosen-input]").forEach(function (input) {
      if (input.dataset.ready) return; input.dataset.ready = "1";
      input.addEventListener("change", function () {
        var out = input.closest("form").querySelector("[data-chosen]");
        if (out && input.files.length) out.textContent = input.files[0].name;
      });
    });
    root.querySelectorAll("form[data-upload]").forEach(function (form) {
      if (form.dataset.ready) return; form.dataset.ready = "1";
      form.addEventListener("submit", function (e) {
        if (!window.FormData || !window.XMLHttpRequest) return; // the plain form still works
        e.preventDefault();
        var button = form.querySelector("[data-submit]"), bar = form.querySelector("[data-progress]"),
            text = form.querySelector("[data-progress-text]"), err = form.querySelector("[data-error]");
        var token = form.querySelector("input[name=csrf_token]").value;
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.getAttribute("action").split("?")[0]);
        xhr.setRequestHeader("X-CSRF-Token", token);
        xhr.setRequestHeader("X-Requested-With", "khana");
        if (button) button.disabled = true;
        if (err) err.hidden = true;
        if (bar) { bar.hidden = false; bar.value = 0; }
        xhr.upload.addEventListener("progress", function (ev) {
          if (!ev.lengthComputable) return;
          var pct = Math.round(100 * ev.loaded / ev.total);
          if (bar) bar.value = pct;
          if (text) text.textContent = pct < 100 ? digits(pct) + (fa ? "٪ فرستاده شد" : "% sent") : (fa ? "در حال ذخیره…" : "storing…");
        });
        xhr.addEventListener("load", function () {
          var body = {};
          try { body = JSON.parse(xhr.responseText); } catch (x) { body = {}; }
          if (xhr.status < 300 && body.redirect) { window.location.assign(body.redirect); return; }
          var msg = String(body.error || body.detail || (fa ? "بارگذاری ناموفق بود" : "The upload failed") + " (" + xhr.status + ")");
          var parts = msg.split(" / ");
          if (err) { err.textContent = fa && parts.length > 1 ? parts.slice(1).join(" / ") : parts[0]; err.hidden = false; }
          if (button) button.disabled = false;
          if (bar) bar.hidden = true;
          if (text) text.textContent = "";
        });
        xhr.addEventListener("error", function () {
          if (err) { err.textContent = fa ? "ارتباط با سرور قطع شد؛ پرونده پذیرفته نشد. دوباره بفرستید." : "The connection failed; the filing was not accepted. Send it again."; err.hidden = false; }
          if (button) button.disabled = false;
          if (bar) bar.hidden = true;
        });
        xhr.send(new FormData(form));
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:load", function (e) { setup(e.detail.elt.parentNode || document); });
})();
