// Swagger UI over this server's /openapi.json; the playground's token (if any) rides along.
"use strict";
(function () {
  var token = sessionStorage.getItem("kdeps.token") || "";
  window.SwaggerUIBundle({
    url: "/_kdeps/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: false,
    requestInterceptor: function (req) {
      if (token) { req.headers.Authorization = "Bearer " + token; }
      return req;
    }
  });
})();
