//! The texts of the utility pages (circuits, ranking, leak tracing) and the report pages, in
//! Chinese (the default) and English: a table of their own (`Msg` here, not the shared one).

use super::Lang;

impl Msg {
    /// The text in `lang`.
    pub(crate) const fn t(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh(),
            Lang::En => self.en(),
        }
    }
}

messages! {
    Utility => "电力运维", "Utility";
    Reports => "整改报表", "Reports";
    Circuits => "回路", "Circuits";
    CircuitTree => "回路树", "Circuit tree";
    Sites => "场所", "Sites";
    AllSites => "全部场所", "All sites";
    NoCircuits => "没有登记回路。", "No circuits registered.";
    Channels => "通道", "Channels";
    OwnBinding => "通道绑定", "channel binding";
    DeviceBinding => "设备绑定", "device binding";
    ResidualCurrent => "剩余电流", "Residual current";
    Temperature => "温度", "Temperature";
    Ranking => "回路排名", "Circuit ranking";
    ByTrend => "按30天趋势", "By 30-day trend";
    ByAlarms => "按报警次数", "By alarm count";
    Trend => "趋势 (mA/天)", "Trend (mA/day)";
    Latest => "最近小时均值 (mA)", "Latest hourly mean (mA)";
    Alarms => "报警", "Alarms";
    LeakTrace => "漏电追踪", "Leak tracing";
    LeakWindow => "最近1小时的平均剩余电流。", "Mean residual current over the last hour.";
    Suspect => "最可能的漏电位置", "Most likely leak";
    NoSuspect => "没有回路的未解释漏电达到下限。", "No circuit's unexplained leakage reaches the floor.";
    FeederSegment => "本回路自身线段", "this circuit's own segment";
    Branch => "支路", "branch";
    Measured => "实测 (mA)", "Measured (mA)";
    BranchesSum => "下级支路合计 (mA)", "Its branches (mA)";
    Unexplained => "未解释 (mA)", "Unexplained (mA)";
    Unmeasured => "无监测的支路", "Unmeasured branches";
    NotMeasured => "此回路没有剩余电流监测，无法追踪。", "Nothing measures this circuit's residual current: no trace.";
    Raw => "原始", "raw";
    Hourly => "小时", "hourly";
    KeyOnly => "只看重点区域", "Key areas only";
    KeyArea => "重点区域", "Key area";
    Unresolved => "未整改隐患（按时长）", "Unresolved hazards by age";
    Age0 => "<1天", "<1 d";
    Age1 => "1–3天", "1–3 d";
    Age2 => "3–7天", "3–7 d";
    Age3 => "7–30天", "7–30 d";
    Age4 => "≥30天", "≥30 d";
    Total => "合计", "Total";
    RepeatSites => "重复隐患场所", "Repeat sites";
    RepeatHelp => "30天内电气报警和烟感报警≥3次的场所。", "Sites with 3 or more electrical or smoke alarms in 30 days.";
    Hazards => "隐患次数", "Hazards";
    LastHazard => "最近一次", "Latest";
    Cells => "网格在线率与响应时间", "Grid cells: online rate and response times";
    CellsHelp => "在线率为当前值；响应时间取30天内开始的事件（离线除外），从开始计。", "Online rate now; response times of episodes (not offline ones) that started in the last 30 days, from their start.";
    Online => "在线率", "Online";
    ToAck => "确认用时 p50 / p90 / 最长", "To acknowledge p50 / p90 / max";
    ToRectify => "整改用时 p50 / p90 / 最长", "To rectify p50 / p90 / max";
    Pending => "未确认 / 未整改", "Unacknowledged / unrectified";
    Offline => "离线超过24小时的设备", "Devices offline for more than 24 h";
    OfflineSince => "离线自", "Offline since";
    BatteryLow => "电池低", "Battery low";
    TestOverdue => "自检逾期", "Self-test overdue";
    NotYet => "见自检逾期列表", "see the overdue self-tests";
    Nothing => "无。", "None.";
    Export => "导出 CSV", "Export CSV";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        for m in Msg::ALL {
            assert!(
                !m.t(Lang::Zh).is_empty() && !m.t(Lang::En).is_empty(),
                "{m:?}"
            );
        }
    }
}
