// The console's only script, and the pages work without it: the queue's table refreshes itself (the page's filter
// is kept: it is in the URL), and the medicine and ICD-10 fields ask the hub's search for a list to pick from.
(function () {
  "use strict";
  var queue = document.querySelector("[data-refresh]");
  if (queue) {
    setInterval(function () {
      var url = new URL(location.href);
      url.searchParams.set("part", "table");
      fetch(url, {credentials: "same-origin"}).then(function (r) {
        if (r.status === 401) { location.reload(); return null; }   // the session ended: the page asks to sign in
        return r.ok ? r.text() : null;
      }).then(function (html) { if (html) { queue.innerHTML = html; } }).catch(function () {});
    }, 1000 * parseInt(queue.getAttribute("data-refresh"), 10));
  }
  // Calls ringing for this doctor, on every page, asked for every two seconds (a ringing phone cannot wait for
  // the queue's refresh).
  var ringing = document.getElementById("ringing");
  if (ringing) {
    var ask = function () {
      fetch(ringing.getAttribute("data-ringing"), {credentials: "same-origin"}).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) { if (html !== null && ringing.innerHTML !== html) { ringing.innerHTML = html; } })
        .catch(function () {});
    };
    ask();
    setInterval(ask, 2000);
  }
  // A formulary item is picked by its label; the hub reads the same label back (console.medicine_label).
  var show = {
    formulary: function (i) { return [i.medicine + " \u2014 " + i.form + " " + i.strength, i.section + " \u00b7 TPG " + i.tpg_list]; },
    icd10: function (i) { return [i.code, i.title]; }
  };
  Array.prototype.forEach.call(document.querySelectorAll("input[data-search]"), function (input) {
    var list = document.getElementById(input.getAttribute("list")), timer = null, asked = "";
    var search = function () {
      var q = input.value.trim();
      if (q.length < 2 || q === asked || q.indexOf("\u2014") >= 0) { return; }
      fetch(input.getAttribute("data-search") + encodeURIComponent(q), {credentials: "same-origin"})
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (items) {
          asked = q;     // only once answered: a failed search is asked again at the next keystroke
          list.textContent = "";
          items.forEach(function (item) {
            var shown = show[input.getAttribute("data-kind")](item), option = document.createElement("option");
            option.value = shown[0];
            option.label = shown[1];
            list.appendChild(option);
          });
        }).catch(function () {});
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
    search();     // what was typed before this script ran (a slow page) is searched for too
  });
  // A spoke's bundle, from a drive, sent part by part in chunks to the endpoint a relay PC uses: a cut link goes on
  // from the last byte the hub confirmed when the file is chosen again.
  var upload = document.getElementById("bundle-upload");
  if (upload) {
    var said = document.getElementById("bundle-outcome"), bar = upload.querySelector("progress");
    var CHUNK = 1024 * 1024, MAGIC = 13, HEADER = 1024;
    var status = function (url) {
      return fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); });
    };
    var sendPart = function (file, sent, total) {
      return file.slice(0, MAGIC + HEADER).text().then(function (text) {
        var header;
        try { header = JSON.parse(text.slice(MAGIC)); } catch (e) { header = null; }
        if (text.slice(0, MAGIC) !== "SPOKE-BUNDLE\n" || !header) { throw new Error(upload.getAttribute("data-notbundle")); }
        var url = "/v1/bundles/" + encodeURIComponent(header.bundle_id) + "/" + header.part;
        var step = function (st) {
          if (st.complete) { return st; }
          var offset = st.received;
          return fetch(url + "?offset=" + offset + "&size=" + file.size, {method: "PUT", credentials: "same-origin",
            headers: {"Content-Type": "application/octet-stream"}, body: file.slice(offset, offset + CHUNK)})
            .then(function (r) {
              if (r.status === 409) { return status(url).then(step); }
              return r.json().then(function (body) {
                if (!r.ok) { throw new Error(body.message || ("HTTP " + r.status)); }
                bar.value = Math.floor(100 * (sent + body.received) / total);
                return step(body);
              });
            });
        };
        return status(url).then(step);
      });
    };
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      var files = Array.prototype.slice.call(upload.querySelector("input[type=file]").files);
      var total = files.reduce(function (n, f) { return n + f.size; }, 0), sent = 0, last = null;
      bar.hidden = false;
      bar.value = 0;
      said.textContent = "";
      said.className = "";
      files.reduce(function (chain, file) {
        return chain.then(function () { return sendPart(file, sent, total); })
          .then(function (st) { sent += file.size; last = st; });
      }, Promise.resolve()).then(function () {
        bar.value = 100;
        said.className = "notice";
        said.textContent = last.outcome ? upload.getAttribute("data-done") + " " + last.outcome
          : upload.getAttribute("data-waiting") + " " + last.waiting.join(", ");
      }).catch(function (error) {
        said.className = "problem";
        said.textContent = error instanceof TypeError ? upload.getAttribute("data-failed") : error.message;
      });
    });
  }
}());
