"""Every UI string in zh-CN (the default) and en, in one table.

Keys are dotted: `type.<code>`, `cat.<code>`, `src.<code>`, `evst.<code>` (event status),
`wkst.<code>` (worker status), `rsk.<code>` (resource kind), `rsst.<code>` (resource status),
`sev.<level>` and UI keys (`kpi.*`, `conn.*`, ...). `{name}` placeholders are filled by
`t(..., name=value)` here and by the same rule in the browser.
"""

from __future__ import annotations

from typing import Final

LANGS: Final = ("zh-CN", "en")
DEFAULT_LANG: Final = "zh-CN"

# (zh-CN, en) per key; a tuple keeps the two languages side by side for reviewers.
_T: Final[dict[str, tuple[str, str]]] = {
    # --- severity: the national emergency levels (国家突发事件分级)
    "sev.1": ("特别重大", "Especially serious"),
    "sev.2": ("重大", "Serious"),
    "sev.3": ("较大", "Relatively serious"),
    "sev.4": ("一般", "General"),
    "sev.level": ("{roman}级", "Level {roman}"),
    # --- event categories
    "cat.natural_disaster": ("自然灾害", "Natural disaster"),
    "cat.accident": ("事故灾难", "Accident"),
    "cat.public_health": ("公共卫生", "Public health"),
    "cat.social_security": ("社会安全", "Social security"),
    "cat.grid_governance": ("网格治理", "Grid governance"),
    "cat.other": ("其他", "Other"),
    # --- event types
    "type.flood": ("洪涝", "Flood"),
    "type.rainstorm": ("暴雨", "Rainstorm"),
    "type.typhoon": ("台风", "Typhoon"),
    "type.earthquake": ("地震", "Earthquake"),
    "type.geological_hazard": ("地质灾害", "Geological hazard"),
    "type.forest_fire": ("森林火灾", "Forest fire"),
    "type.snow_ice": ("雨雪冰冻", "Snow and ice"),
    "type.drought": ("干旱", "Drought"),
    "type.fire": ("火灾", "Fire"),
    "type.traffic_accident": ("交通事故", "Traffic accident"),
    "type.hazmat_leak": ("危化品泄漏", "Hazmat leak"),
    "type.gas_leak": ("燃气泄漏", "Gas leak"),
    "type.building_collapse": ("房屋倒塌", "Building collapse"),
    "type.production_safety": ("安全生产事故", "Workplace accident"),
    "type.water_pipe_burst": ("供水管爆裂", "Water main burst"),
    "type.power_outage": ("停电", "Power outage"),
    "type.epidemic": ("传染病疫情", "Epidemic"),
    "type.food_poisoning": ("食物中毒", "Food poisoning"),
    "type.animal_epidemic": ("动物疫情", "Animal epidemic"),
    "type.mass_incident": ("群体性事件", "Mass incident"),
    "type.fight": ("打架斗殴", "Fight"),
    "type.theft": ("盗窃", "Theft"),
    "type.missing_person": ("人员走失", "Missing person"),
    "type.drowning": ("溺水", "Drowning"),
    "type.dispute": ("矛盾纠纷", "Dispute"),
    "type.safety_hazard": ("安全隐患", "Safety hazard"),
    "type.illegal_parking": ("违章停车", "Illegal parking"),
    "type.street_vending": ("占道经营", "Street vending"),
    "type.garbage": ("垃圾堆放", "Garbage"),
    "type.elderly_alone": ("独居老人异常", "Elderly living alone"),
    "type.illegal_construction": ("违章建筑", "Illegal construction"),
    "type.road_damage": ("道路破损", "Road damage"),
    "type.noise": ("噪音扰民", "Noise"),
    "type.manhole_cover": ("井盖缺失", "Manhole cover"),
    "type.pollution": ("环境污染", "Pollution"),
    "type.petition": ("信访诉求", "Petition"),
    "type.other": ("其他", "Other"),
    # --- sources
    "src.app": ("网格员APP", "Grid app"),
    "src.wechat": ("微信上报", "WeChat"),
    "src.hotline": ("12345热线", "12345 hotline"),
    "src.video_ai": ("视频AI", "Video AI"),
    "src.iot": ("物联感知", "IoT sensor"),
    "src.patrol": ("巡查发现", "Patrol"),
    "src.police": ("110联动", "Police 110"),
    "src.other": ("其他", "Other"),
    # --- event statuses
    "evst.reported": ("已上报", "Reported"),
    "evst.dispatched": ("已派发", "Dispatched"),
    "evst.in_progress": ("处置中", "In progress"),
    "evst.handled": ("已处置", "Handled"),
    "evst.verified": ("已核查", "Verified"),
    "evst.closed": ("已办结", "Closed"),
    "evst.cancelled": ("已撤销", "Cancelled"),
    # --- worker statuses
    "wkst.on_duty": ("在岗", "On duty"),
    "wkst.busy": ("处置中", "Busy"),
    "wkst.off_duty": ("离岗", "Off duty"),
    "wkst.sos": ("紧急求助", "SOS"),
    # --- resource kinds
    "rsk.fire_engine": ("消防车", "Fire engine"),
    "rsk.ambulance": ("救护车", "Ambulance"),
    "rsk.police_car": ("警车", "Police car"),
    "rsk.patrol_car": ("巡逻车", "Patrol car"),
    "rsk.law_enforcement": ("综合执法", "Law enforcement"),
    "rsk.rescue_team": ("救援队伍", "Rescue team"),
    "rsk.volunteer": ("志愿者", "Volunteers"),
    "rsk.drone": ("无人机", "Drone"),
    "rsk.supply_depot": ("物资储备点", "Supply depot"),
    "rsk.shelter": ("避难场所", "Shelter"),
    "rsk.other": ("其他", "Other"),
    # --- resource statuses
    "rsst.available": ("待命", "Available"),
    "rsst.dispatched": ("已调派", "Dispatched"),
    "rsst.en_route": ("赶赴途中", "En route"),
    "rsst.on_scene": ("到达现场", "On scene"),
    "rsst.returning": ("返回途中", "Returning"),
    "rsst.unavailable": ("不可用", "Unavailable"),
    # --- entity kinds
    "kind.event": ("事件", "Event"),
    "kind.worker": ("网格员", "Grid worker"),
    "kind.resource": ("应急资源", "Resource"),
    "kind.camera": ("视频监控", "Camera"),
    "kind.feedback": ("处置反馈", "Feedback"),
    # --- feedback stages
    "fbst.accepted": ("已接单", "Accepted"),
    "fbst.arrived": ("已到场", "Arrived"),
    "fbst.handled": ("已处置", "Handled"),
    "fbst.rejected": ("已退回", "Rejected"),
    "fbst.need_support": ("请求支援", "Needs support"),
    # --- camera stream types
    "stream.hls": ("HLS直播流", "HLS stream"),
    "stream.mp4": ("MP4视频", "MP4 video"),
    "stream.webm": ("WebM视频", "WebM video"),
    "stream.mjpeg": ("MJPEG流", "MJPEG stream"),
    "stream.image": ("快照图片", "Snapshot image"),
    "stream.none": ("无视频", "No video"),
    # --- coordinate datums
    "crs.wgs84": ("WGS-84", "WGS-84"),
    "crs.gcj02": ("GCJ-02（国测局）", "GCJ-02"),
    "crs.bd09": ("BD-09（百度）", "BD-09"),
    # --- header
    "app.title": ("指挥大屏", "Command wall"),
    "header.subtitle": ("实时态势 · 7×24小时值守", "Live situation · 24/7 watch"),
    "header.lang_switch": ("EN", "中文"),
    "header.lang_switch_title": ("Switch to English", "切换到中文"),
    "header.data_age": ("数据", "Data"),
    "weekday.0": ("星期日", "Sunday"),
    "weekday.1": ("星期一", "Monday"),
    "weekday.2": ("星期二", "Tuesday"),
    "weekday.3": ("星期三", "Wednesday"),
    "weekday.4": ("星期四", "Thursday"),
    "weekday.5": ("星期五", "Friday"),
    "weekday.6": ("星期六", "Saturday"),
    # --- connection states
    "conn.connecting": ("连接中", "Connecting"),
    "conn.connected": ("实时连接", "Live"),
    "conn.reconnecting": ("重连中（第{n}次）", "Reconnecting (attempt {n})"),
    "conn.offline": ("离线", "Offline"),
    # --- data age
    "age.none": ("暂无数据", "No data yet"),
    "age.now": ("刚刚", "just now"),
    "age.seconds": ("{n}秒前", "{n} s ago"),
    "age.minutes": ("{n}分钟前", "{n} min ago"),
    "age.hours": ("{n}小时前", "{n} h ago"),
    "age.days": ("{n}天前", "{n} d ago"),
    "age.degraded": ("接入异常", "Ingest degraded"),
    "dur.seconds": ("{n}秒", "{n} s"),
    "dur.minutes": ("{n}分钟", "{n} min"),
    "dur.hours": ("{h}小时{m}分", "{h} h {m} min"),
    "dur.days": ("{d}天{h}小时", "{d} d {h} h"),
    # --- KPIs
    "kpi.today": ("今日事件", "Events today"),
    "kpi.open": ("未办结", "Open"),
    "kpi.in_progress": ("处置中", "In progress"),
    "kpi.closed_today": ("今日办结", "Closed today"),
    "kpi.by_severity": ("今日分级", "Today by level"),
    "kpi.workers_online": ("在线网格员", "Workers online"),
    "kpi.ingest_rate": ("接入速率", "Ingest rate"),
    "kpi.rate_unit": ("条/秒", "msg/s"),
    # --- panels
    "panel.overview": ("今日态势", "Today"),
    "panel.events": ("实时事件", "Live events"),
    "panel.by_category": ("事件类别", "By category"),
    "panel.by_source": ("上报渠道", "By source"),
    "panel.legend": ("图层", "Layers"),
    "panel.detail": ("事件详情", "Event details"),
    "list.empty": ("暂无事件", "No events"),
    "list.count": ("共{n}条", "{n} total"),
    # --- legend
    "legend.events": ("事件", "Events"),
    "legend.workers": ("网格员", "Grid workers"),
    "legend.resources": ("应急资源", "Resources"),
    "legend.cameras": ("视频监控", "Cameras"),
    "legend.boundary": ("行政区划", "Boundaries"),
    # --- map
    "map.town": ("镇街", "Town"),
    "map.community": ("社区", "Community"),
    "map.grid": ("网格", "Grid"),
    "map.microgrid": ("微网格", "Micro-grid"),
    "map.open": ("在办事件", "Open events"),
    "map.urgent": ("重大及以上", "Level II and above"),
    # --- event details
    "detail.title": ("标题", "Title"),
    "detail.type": ("类型", "Type"),
    "detail.category": ("类别", "Category"),
    "detail.severity": ("等级", "Level"),
    "detail.source": ("来源", "Source"),
    "detail.address": ("地址", "Address"),
    "detail.area": ("区域", "Area"),
    "detail.grid": ("网格", "Grid"),
    "detail.reporter": ("上报人", "Reporter"),
    "detail.reported": ("上报时间", "Reported"),
    "detail.age": ("已历时", "Age"),
    "detail.status": ("状态", "Status"),
    "detail.description": ("描述", "Description"),
    "detail.close": ("关闭", "Close"),
    "detail.none": ("—", "—"),
    "detail.gridworker": ("网格员", "Grid worker"),
    # --- the event panel: the command loop (assets/js/cc-60-command.js)
    "cmd.loading": ("加载中…", "Loading…"),
    "cmd.err_load": ("详情加载失败", "Could not load the details"),
    "cmd.pending": ("新重大事件 {n}", "New urgent events: {n}"),
    "cmd.pending_title": ("点击查看最新的重大事件", "Show the newest urgent event"),
    "cmd.loop": ("闭环进度", "Response loop"),
    "cmd.no_task": ("尚未派发", "Not dispatched yet"),
    "cmd.task_by": ("{task} · {by}派发", "{task} · dispatched by {by}"),
    "cmd.nearby": ("周边力量", "Nearby units"),
    "cmd.nearby_empty": ("周边暂无可用力量", "No units available nearby"),
    "cmd.plans": ("匹配预案", "Matched plans"),
    "cmd.plans_empty": ("无匹配预案", "No matching plan"),
    "cmd.plan_score": ("匹配度{n}", "score {n}"),
    "cmd.steps": ("处置流程", "Procedure"),
    "cmd.step_limit": ("{n}分钟内", "within {n} min"),
    "cmd.timeline": ("时间线", "Timeline"),
    "cmd.timeline_empty": ("暂无记录", "Nothing yet"),
    "cmd.dist_m": ("{n}米", "{n} m"),
    "cmd.dist_km": ("{n}公里", "{n} km"),
    "cmd.eta_s": ("约{n}秒", "~{n} s"),
    "cmd.eta_min": ("约{n}分钟", "~{n} min"),
    "cmd.dispatch": ("一键派发", "Dispatch"),
    "cmd.proposal": ("派发方案", "Dispatch proposal"),
    "cmd.proposal_plan": ("预案：{name}", "Plan: {name}"),
    "cmd.proposal_noplan": ("无预案：手动选择力量", "No plan: choose the units"),
    "cmd.recommended": ("推荐", "Recommended"),
    "cmd.call": ("{kind} ×{count}", "{kind} ×{count}"),
    "cmd.call_eta": ("{n}分钟内到场", "on scene within {n} min"),
    "cmd.unfilled": ("缺口：{kind} {n}", "Short: {kind} {n}"),
    "cmd.other_units": ("其他可选力量", "Other units"),
    "cmd.no_plan": ("不按预案派发", "Dispatch without a plan"),
    "cmd.override": ("调整原因（与推荐不同时必填）",
                     "Reason (required when changing the recommendation)"),
    "cmd.note": ("派发说明", "Note to the units"),
    "cmd.confirm": ("确认派发", "Confirm dispatch"),
    "cmd.cancel": ("取消", "Cancel"),
    "cmd.override_needed": ("所选力量与推荐不同，请填写调整原因",
                            "The selection differs from the recommendation: give a reason"),
    "cmd.select_none": ("请至少选择一支力量", "Select at least one unit"),
    "cmd.sending": ("派发中…", "Dispatching…"),
    "cmd.sent": ("已派发 {task}", "Dispatched {task}"),
    "cmd.duplicate": ("已派发（重复提交）{task}", "Already dispatched (same request) {task}"),
    "cmd.err_has_task": ("该事件已由{by}派发（{task}）", "Already dispatched by {by} ({task})"),
    "cmd.err_unit_busy": ("{unit}正在执行其他任务", "Unit engaged: {unit}"),
    "cmd.err_forbidden": ("当前角色无此权限", "Your role may not do this"),
    "cmd.err_signed_out": ("登录已失效，请重新登录", "Signed out: sign in again"),
    "cmd.err_generic": ("操作失败：{msg}", "Failed: {msg}"),
    "cmd.err_network": ("网络错误，请重试", "Network error: try again"),
    "cmd.someone": ("他人", "someone else"),
    "cmd.verify": ("核查", "Verify"),
    "cmd.passed": ("核查通过", "Passed"),
    "cmd.failed": ("核查不通过", "Failed"),
    "cmd.verify_note": ("核查意见", "Verification note"),
    "cmd.evaluate": ("评价", "Evaluate"),
    "cmd.eval_note": ("评价意见", "Evaluation note"),
    "cmd.score": ("{n}分", "{n}/5"),
    "cmd.verified": ("{by}核查：{result}", "Verified by {by}: {result}"),
    "cmd.evaluated": ("{by}评价：{n}分", "Rated {n}/5 by {by}"),
    "cmd.override_shown": ("调整原因：{reason}", "Changed: {reason}"),
    "cmd.saved": ("已提交", "Saved"),
    # --- task stages (Task.stage and each assignee's stage)
    "tkst.dispatched": ("已派发", "Dispatched"),
    "tkst.accepted": ("已接单", "Accepted"),
    "tkst.arrived": ("已到场", "Arrived"),
    "tkst.handled": ("已处置", "Handled"),
    "tkst.rework": ("返工", "Rework"),
    "tkst.rejected": ("已退回", "Rejected"),
    "tkst.need_support": ("请求支援", "Needs support"),
    "tkst.closed": ("已办结", "Closed"),
    # --- the 1-3-5 rule (Bao'an): on scene within 1 / 3 / 5 minutes
    "r135.ok": ("1-3-5达标", "1-3-5 ok"),
    "r135.over": ("超1-3-5时限", "Over 1-3-5"),
    "r135.none": ("无时限", "No limit"),
    "r135.title": ("1-3-5快速响应：{n}秒内到场", "1-3-5 rule: on scene within {n} s"),
    # --- alerts (cc:alert kinds; 红黄牌 = the red and yellow deadline cards)
    "alert.panel": ("告警", "Alerts"),
    "alert.empty": ("暂无告警", "No alerts"),
    "alert.count": ("{n}条", "{n}"),
    "alert.more": ("另有{n}条", "{n} more"),
    "alert.ack": ("确认", "Ack"),
    "alert.kind.critical_event": ("重大事件", "Critical event"),
    "alert.kind.sla_yellow": ("黄牌", "Yellow card"),
    "alert.kind.sla_red": ("红牌", "Red card"),
    "alert.kind.geofence_exit": ("越界", "Left the area"),
    "alert.kind.sos": ("紧急求助", "SOS"),
}


def normalise_lang(raw: str | None) -> str:
    """`en`, `en-US`, `EN` → `en`; anything else (or nothing) → the default zh-CN."""
    if raw and raw.strip().lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANG


def t(key: str, lang: str = DEFAULT_LANG, **kw: object) -> str:
    """The string for `key` in `lang`; an unknown key shows as itself so a gap is visible."""
    pair = _T.get(key)
    if pair is None:
        return key
    text = pair[LANGS.index(normalise_lang(lang))]
    return text.format(**kw) if kw else text


def known_keys() -> frozenset[str]:
    return frozenset(_T)


def table_for(lang: str) -> dict[str, str]:
    """Every string in one language, for the browser (placeholders left unfilled)."""
    idx = LANGS.index(normalise_lang(lang))
    return {key: pair[idx] for key, pair in _T.items()}
