/* Sentinelle triage report: reveal one group's thumbnail at a time.
 * Inlined into the self-contained HTML report (its CSP pins this script by SHA-256).
 * The page shows blurred grayscale thumbnails rendered by Pillow; the sharp ones sit in
 * the JSON block #sharp and are swapped in for one group on "reveal", hidden again on
 * a second click, Esc, another reveal, or after data-reveal-seconds on <body>.
 */
(function () {
  "use strict";
  var SECONDS = parseInt(document.body.getAttribute("data-reveal-seconds"), 10) || 20;
  var data = JSON.parse(document.getElementById("sharp").textContent || "{}");
  var open = null, timer = null;
  function hide() {
    if (!open) return;
    var imgs = document.querySelectorAll('img[data-group="' + open + '"]');
    for (var i = 0; i < imgs.length; i++) {
      imgs[i].src = imgs[i].getAttribute("data-blurred");
      imgs[i].classList.remove("revealed", "colour");
    }
    var bs = document.querySelectorAll('button[data-reveal="' + open + '"]');
    for (var j = 0; j < bs.length; j++) {
      bs[j].textContent = "reveal";
      bs[j].setAttribute("aria-pressed", "false");
    }
    var cs = document.querySelectorAll('button[data-colour="' + open + '"]');
    for (var k = 0; k < cs.length; k++) cs[k].hidden = true;
    document.body.removeAttribute("data-revealed");
    open = null;
    if (timer) { clearTimeout(timer); timer = null; }
  }
  function reveal(key) {
    var was = open;
    hide();
    if (was === key || !data[key]) return;
    var imgs = document.querySelectorAll('img[data-group="' + key + '"]');
    for (var i = 0; i < imgs.length; i++) {
      imgs[i].setAttribute("data-blurred", imgs[i].src);
      imgs[i].src = data[key];
      imgs[i].classList.add("revealed");
    }
    var bs = document.querySelectorAll('button[data-reveal="' + key + '"]');
    for (var j = 0; j < bs.length; j++) {
      bs[j].textContent = "hide";
      bs[j].setAttribute("aria-pressed", "true");
    }
    var cs = document.querySelectorAll('button[data-colour="' + key + '"]');
    for (var k = 0; k < cs.length; k++) cs[k].hidden = false;
    document.body.setAttribute("data-revealed", key);
    open = key;
    timer = setTimeout(hide, SECONDS * 1000);
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!t || !t.getAttribute) return;
    var key = t.getAttribute("data-reveal");
    if (key) { ev.preventDefault(); reveal(key); return; }
    var c = t.getAttribute("data-colour");
    if (c && c === open) {
      var imgs = document.querySelectorAll('img[data-group="' + c + '"]');
      for (var i = 0; i < imgs.length; i++) imgs[i].classList.toggle("colour");
    }
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") hide(); });
})();
