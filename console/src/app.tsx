/** The console's frame: header with navigation and Settings, and the view the route names. */
import { useMemo, useState } from "preact/hooks";
import { adminClient } from "./api.js";
import { ConsoleContext, type ConsoleState } from "./context.js";
import { DeliveryView } from "./delivery.js";
import { EndpointsView } from "./endpoints.js";
import { FeedView } from "./feed.js";
import { FeedStore } from "./feed-store.js";
import { type Route, useRoute } from "./route.js";
import { loadSettings, type Settings, saveSettings } from "./settings.js";
import { Empty } from "./ui.js";

/** The whole console. */
export function App() {
  const [settings, setSettings] = useState(loadSettings);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const client = useMemo(() => adminClient(settings.token), [settings.token]);
  // One feed for the page's life: leaving the feed and coming back resumes it.
  const [feed] = useState(() => new FeedStore());
  const route = useRoute();

  const state: ConsoleState = useMemo(
    () => ({ client, settings, openSettings: () => setSettingsOpen(true) }),
    [client, settings],
  );
  const save = (next: Settings) => {
    setSettings(saveSettings(next));
    setSettingsOpen(false);
  };

  return (
    <ConsoleContext.Provider value={state}>
      <header class="topbar">
        <a class="brand" href="#/feed">
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="22" height="22" />
          Hookline <span>console</span>
        </a>
        <nav class="tabs" aria-label="Views">
          <a href="#/feed" class={route.view === "feed" || route.view === "delivery" ? "active" : undefined}>
            Live feed
          </a>
          <a href="#/endpoints" class={route.view === "endpoints" ? "active" : undefined}>
            Endpoints
          </a>
        </nav>
        <button
          type="button"
          class={`token-button${settings.token ? " has-token" : ""}`}
          aria-expanded={settingsOpen}
          onClick={() => setSettingsOpen(!settingsOpen)}
        >
          <span class="dot" />
          {settings.token === "" ? "No token" : settings.admin ? "Token · admin actions" : "Token · read-only"}
        </button>
      </header>
      {settingsOpen && <SettingsPanel settings={settings} onSave={save} onCancel={() => setSettingsOpen(false)} />}
      <main>
        <View route={route} feed={feed} />
      </main>
    </ConsoleContext.Provider>
  );
}

function View({ route, feed }: { route: Route; feed: FeedStore }) {
  switch (route.view) {
    case "feed":
      return <FeedView store={feed} params={route.params} />;
    case "endpoints":
      return <EndpointsView params={route.params} />;
    case "delivery":
      return <DeliveryView key={route.id} id={route.id} />;
    default:
      return (
        <Empty>
          Nothing at <code>{route.path}</code>. <a href="#/feed">Go to the live feed</a>.
        </Empty>
      );
  }
}

/**
 * The token and the admin-actions switch. The switch needs a token: without
 * one the console stays read-only.
 */
function SettingsPanel({ settings, onSave, onCancel }: { settings: Settings; onSave: (s: Settings) => void; onCancel: () => void }) {
  const [token, setToken] = useState(settings.token);
  const [admin, setAdmin] = useState(settings.admin);
  const hasToken = token.trim() !== "";
  const submit = (e: Event) => {
    e.preventDefault();
    onSave({ token, admin: admin && hasToken });
  };
  return (
    <div class="settings-layer">
      <form class="settings card" onSubmit={submit} aria-label="Settings">
        <h2>Settings</h2>
        <label class="field">
          Token
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            placeholder="an admin token or API key (hlk_…)"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        <p class="help">
          Sent as <code>authorization: Bearer …</code> with every call, and kept in this browser's local storage. A
          Hookline without authentication needs none, and accepts any.
        </p>
        <label class={`check${hasToken ? "" : " disabled"}`}>
          <input
            id="admin-actions"
            name="admin"
            type="checkbox"
            checked={admin && hasToken}
            disabled={!hasToken}
            onChange={(e) => setAdmin(e.currentTarget.checked)}
          />
          Admin actions: show the Retry button on deliveries
        </label>
        <p class="help">
          The console is read-only until you turn this on. It only shows the button: Hookline decides, and a token that
          may not retry gets PERMISSION_DENIED.
        </p>
        <div class="settings-actions">
          <button type="submit" class="button primary">
            Save
          </button>
          {settings.token !== "" && (
            <button type="button" class="button" onClick={() => onSave({ token: "", admin: false })}>
              Forget token
            </button>
          )}
          <button type="button" class="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}
