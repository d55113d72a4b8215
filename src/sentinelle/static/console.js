/* Sentinelle review console: the little behaviour htmx does not cover.
 * Served from /console/static (the CSP allows scripts from 'self' only; no inline code).
 *
 * A decision form's "Custom category" input stays disabled (and so is not
 * submitted) unless its category dropdown is set to "custom…". The input names
 * its dropdown with data-custom-for="<select id>".
 */
(function () {
  "use strict";

  function syncCustom(input) {
    var select = document.getElementById(input.getAttribute("data-custom-for"));
    if (!select) return;
    var custom = select.value === "custom";
    input.disabled = !custom;
    input.required = custom;
    return custom;
  }

  function syncAll(root) {
    var inputs = (root || document).querySelectorAll("input[data-custom-for]");
    for (var i = 0; i < inputs.length; i++) syncCustom(inputs[i]);
  }

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select || select.tagName !== "SELECT" || !select.id) return;
    var inputs = document.querySelectorAll('input[data-custom-for="' + select.id + '"]');
    for (var i = 0; i < inputs.length; i++) {
      if (syncCustom(inputs[i])) inputs[i].focus();
    }
  });
  // First load (and back/forward restores), then every fragment htmx swaps in.
  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:load", function (event) { syncAll(event.target); });
})();
