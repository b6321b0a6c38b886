// Starts Redoc on the document embedded in the page (no inline script, so the page's
// content security policy can forbid inline scripts).
(function () {
  function read(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }
  Redoc.init(read("redoc-spec"), read("redoc-config"), document.getElementById("redoc-container"));
})();
