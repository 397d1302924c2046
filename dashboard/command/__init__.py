"""The command loop (上报-派发-反馈-核查-评价): plans, proposals, dispatch, tasks, time limits
and alerts."""
