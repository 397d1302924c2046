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
    # --- response plans (dashboard.plans): why a plan was matched, who does a step
    "plan.reason.type": ("事件类型相符：{name}", "Event type matches: {name}"),
    "plan.reason.category": ("事件类别相符：{name}", "Event category matches: {name}"),
    "plan.reason.fallback": ("通用兜底预案", "Generic fallback plan"),
    "plan.reason.severity": ("适用等级{levels}，事件为{level}级",
                             "Covers levels {levels}; the event is level {level}"),
    "plan.reason.any_severity": ("适用各等级事件", "Covers every level"),
    "plan.reason.area": ("适用于事发区域", "Covers the event's area"),
    "plan.reason.citywide": ("全市适用", "Applies city-wide"),
    "plan.reason.level": ("响应级别与事件等级一致（{level}级）",
                          "Response level equals the event's level ({level})"),
    "plrole.commander": ("指挥长", "Commander"),
    "plrole.duty_officer": ("值班员", "Duty officer"),
    "plrole.grid_worker": ("网格员", "Grid worker"),
    "plrole.community": ("社区", "Community"),
    "plrole.town": ("镇街", "Town"),
    "plrole.volunteer": ("义警志愿者", "Volunteers"),
    "plrole.patrol": ("巡逻辅警", "Auxiliary patrol"),
    "plrole.police": ("公安", "Police"),
    "plrole.fire": ("消防救援", "Fire and rescue"),
    "plrole.medical": ("120急救", "120 ambulance service"),
    "plrole.health": ("卫健疾控", "Health and CDC"),
    "plrole.emergency": ("应急管理", "Emergency management"),
    "plrole.rescue": ("抢险救援队", "Rescue teams"),
    "plrole.water": ("水务", "Water bureau"),
    "plrole.city_mgmt": ("城管执法", "City management"),
    "plrole.sanitation": ("环卫", "Sanitation"),
    "plrole.housing": ("住建市政", "Housing and works"),
    "plrole.natural_resources": ("自然资源", "Natural resources"),
    "plrole.environment": ("生态环境", "Environment"),
    "plrole.market": ("市场监管", "Market regulation"),
    "plrole.agriculture": ("农业农村", "Agriculture"),
    "plrole.civil_affairs": ("民政", "Civil affairs"),
    "plrole.petition": ("信访", "Petitions"),
    "plrole.judicial": ("司法所", "Judicial office"),
    "plrole.utility": ("供水供电等权属单位", "Utility owner"),
    "plrole.power": ("供电公司", "Power company"),
    "plrole.gas": ("燃气公司", "Gas company"),
    "plrole.enterprise": ("事发企业", "The company involved"),
    "plrole.drone": ("无人机分队", "Drone unit"),
    # --- deadlines (dashboard.sla): yellow / red cards
    "sla.stage.dispatch": ("派单", "dispatch"),
    "sla.stage.arrive": ("到场", "arrival"),
    "sla.stage.handle": ("处置", "handling"),
    "sla.yellow": ("黄牌预警：{stage}时限{limit}已过{pct}%，剩余{left}",
                   "Yellow card: {pct}% of the {limit} {stage} limit used, {left} left"),
    "sla.red": ("红牌督办：{stage}超时（时限{limit}，已超{over}）",
                "Red card: {stage} overdue (limit {limit}, {over} over)"),
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
    # --- alerts raised by the watch service (feeds/watch.py); `message` of cc:alert
    "alert.critical_event": ("{level}事件：{title}", "{level} event: {title}"),
    "alert.rejected": ("任务{task}被退回：{title}，请重新调派",
                       "Task {task} was rejected: {title}; dispatch again"),
    "alert.need_support": ("任务{task}请求支援：{title}", "Task {task} needs support: {title}"),
    "alert.sla": ("【{title}】{card}", "[{title}] {card}"),
    "alert.sos": ("{name}发出SOS求助", "{name} sent an SOS"),
    "alert.sos_event": ("{name}发出SOS求助（处置中：{title}）",
                        "{name} sent an SOS (while handling: {title})"),
    # --- sign-in (callbacks/auth.py) and the header's user
    "login.title": ("用户登录", "Sign in"),
    "login.user": ("用户名", "User name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.busy": ("正在登录…", "Signing in…"),
    "login.wrong": ("用户名或密码错误", "Wrong user name or password"),
    "login.throttled": ("失败次数过多，请15分钟后再试",
                        "Too many failures: try again in 15 minutes"),
    "login.failed": ("登录失败，请稍后重试", "Sign-in failed; please try again"),
    "login.hint": ("仅限授权人员使用，所有操作均有审计记录",
                   "Authorised staff only; every action is audited"),
    "header.sign_out": ("退出", "Sign out"),
    "header.user_title": ("当前用户：{user}（{role}）", "Signed in: {user} ({role})"),
    "role.commander": ("指挥长", "Commander"),
    "role.duty_officer": ("值班员", "Duty officer"),
    "role.leader": ("领导", "Leader"),
    "role.display": ("大屏", "Display"),
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
