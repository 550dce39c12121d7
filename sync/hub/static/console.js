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
  // A formulary item is picked by its label; the hub reads the same label back (console.medicine_label).
  var show = {
    formulary: function (i) { return [i.medicine + " \u2014 " + i.form + " " + i.strength, i.section + " \u00b7 TPG " + i.tpg_list]; },
    icd10: function (i) { return [i.code, i.title]; }
  };
  Array.prototype.forEach.call(document.querySelectorAll("input[data-search]"), function (input) {
    var list = document.getElementById(input.getAttribute("list")), timer = null, asked = "";
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (q.length < 2 || q === asked || q.indexOf("\u2014") >= 0) { return; }
        asked = q;
        fetch(input.getAttribute("data-search") + encodeURIComponent(q), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (items) {
            list.textContent = "";
            items.forEach(function (item) {
              var shown = show[input.getAttribute("data-kind")](item), option = document.createElement("option");
              option.value = shown[0];
              option.label = shown[1];
              list.appendChild(option);
            });
          }).catch(function () {});
      }, 250);
    });
  });
}());
