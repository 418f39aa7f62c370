import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

/** Every cosafe dashboard: its fixed uid, the cosafe tag, links to the others, refreshed every 30 s. */
export function cosafeDashboard(uid: string, title: string, description: string) {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['cosafe'])
    .readonly()
    .time({ from: 'now-6h', to: 'now' })
    .refresh('30s')
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(new dashboard.DashboardLinkBuilder('cosafe').type(dashboard.DashboardLinkType.Dashboards).tags(['cosafe']).asDropdown(true).keepTime(true).includeVars(false));
}
