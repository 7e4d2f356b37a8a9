// Two pages in one app: `/panel` is the demo (a customer's admin panel with the reporter in
// it), every other path the operations dashboard. No router library: two routes and links.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./styles.css";

const root = document.getElementById("root");

if (location.pathname.replace(/\/+$/, "") === "/panel") {
  // The panel starts the reporter before it renders anything (see panel/start.jsx).
  import("./panel/start.jsx").then((m) => m.start(root));
} else {
  import("./dashboard/Dashboard.jsx").then(({ Dashboard }) => {
    createRoot(root).render(
      <StrictMode>
        <Dashboard />
      </StrictMode>,
    );
  });
}
