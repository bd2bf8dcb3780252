//! The UI's one message table: every text a page shows, in Chinese (the default) and English.
//! The language is the `fg_lang` cookie's (`/lang/en`, `/lang/zh`), else the browser's first
//! `Accept-Language`, else Chinese.

use axum::http::HeaderMap;

use crate::model::{Category, DeviceKind, DeviceState, TicketState};

pub(crate) mod commission;
pub(crate) mod evidence;

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// 简体中文 (the default).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The cookie's value and the `lang` attribute.
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Self::Zh => "zh-CN",
            Self::En => "en",
        }
    }

    /// The language of a request.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        if let Some(v) = super::session::cookie(headers, "fg_lang") {
            return if v == "en" { Self::En } else { Self::Zh };
        }
        let first = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if first.starts_with("en") {
            Self::En
        } else {
            Self::Zh
        }
    }

    /// The text of `m`.
    pub(crate) const fn t(self, m: Msg) -> &'static str {
        match self {
            Self::Zh => m.zh(),
            Self::En => m.en(),
        }
    }

    /// A ticket state's name.
    pub(crate) const fn ticket(self, s: TicketState) -> &'static str {
        self.t(match s {
            TicketState::Raised => Msg::TicketRaised,
            TicketState::Acknowledged => Msg::TicketAcknowledged,
            TicketState::Dispatched => Msg::TicketDispatched,
            TicketState::Rectified => Msg::TicketRectified,
            TicketState::Verified => Msg::TicketVerified,
            TicketState::Closed => Msg::TicketClosed,
        })
    }

    /// A category's name.
    pub(crate) const fn category(self, c: Category) -> &'static str {
        self.t(match c {
            Category::Alarm => Msg::CatAlarm,
            Category::Fault => Msg::CatFault,
            Category::Offline => Msg::CatOffline,
            Category::BatteryLow => Msg::CatBattery,
            Category::Smoke => Msg::CatSmoke,
            Category::Tamper => Msg::CatTamper,
        })
    }

    /// What to do first about a category of hazard.
    pub(crate) const fn first_action(self, c: Category) -> &'static str {
        self.t(match c {
            Category::Alarm => Msg::DoAlarm,
            Category::Fault => Msg::DoFault,
            Category::Offline => Msg::DoOffline,
            Category::BatteryLow => Msg::DoBattery,
            Category::Smoke => Msg::DoSmoke,
            Category::Tamper => Msg::DoTamper,
        })
    }

    /// A device kind's name.
    pub(crate) const fn device_kind(self, k: DeviceKind) -> &'static str {
        self.t(match k {
            DeviceKind::ElectricalFireMonitor => Msg::KindMonitor,
            DeviceKind::SmokeAlarm => Msg::KindSmoke,
            DeviceKind::LegacyModbus => Msg::KindModbus,
        })
    }

    /// A device state's name.
    pub(crate) const fn device_state(self, s: DeviceState) -> &'static str {
        self.t(match s {
            DeviceState::Registered => Msg::DevRegistered,
            DeviceState::Commissioned => Msg::DevCommissioned,
            DeviceState::InService => Msg::DevInService,
            DeviceState::Decommissioned => Msg::DevDecommissioned,
        })
    }
}

macro_rules! messages {
    ($($key:ident => $zh:literal, $en:literal;)*) => {
        /// A text of the UI.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Msg {
            $(#[doc = $en] $key,)*
        }

        impl Msg {
            /// Every message (the tests check that none is empty).
            #[cfg(test)]
            pub(crate) const ALL: &[Self] = &[$(Self::$key,)*];

            const fn zh(self) -> &'static str {
                match self { $(Self::$key => $zh,)* }
            }

            const fn en(self) -> &'static str {
                match self { $(Self::$key => $en,)* }
            }
        }
    };
}

messages! {
    Product => "火网 · 智慧用电安全监测", "firegrid · electrical fire monitoring";
    Login => "登录", "Log in";
    Logout => "退出", "Log out";
    TokenLabel => "访问令牌", "API token";
    TokenHelp => "使用管理员发给您的令牌（firegrid user add 打印的那一行）。", "Use the token an admin gave you (the line `firegrid user add` printed).";
    LoginRefused => "令牌无效（未知、已吊销或输入有误）。", "The token is not valid (unknown, revoked or mistyped).";
    LoginLimited => "登录失败次数过多，请稍后再试。", "Too many refused logins: try again later.";
    Board => "监控中心", "Monitoring centre";
    Field => "网格巡查", "Grid worker";
    Install => "安装调试", "Installer";
    Devices => "设备", "Devices";
    Areas => "区域", "Areas";
    AllAreas => "全部区域", "All areas";
    OpenHazards => "未处置隐患", "Open hazards";
    NoHazards => "当前没有未处置的隐患。", "No open hazards.";
    Live => "实时", "Live";
    Offline => "连接中断，正在重连…", "Disconnected, reconnecting…";
    SoundOn => "开启声音", "Sound on";
    SoundOff => "声音已开", "Sound is on";
    Category => "类别", "Category";
    Place => "位置", "Place";
    Value => "测量值 / 设定值", "Value / set-point";
    Age => "持续", "Age";
    Escalation => "升级", "Escalation";
    Ticket => "工单", "Ticket";
    Actions => "操作", "Actions";
    Acknowledge => "确认", "Acknowledge";
    Dispatch => "派单", "Dispatch";
    Rectify => "整改完成", "Rectified";
    Note => "备注", "Note";
    NotePlaceholder => "做了什么、发现了什么", "What was done, what was found";
    Owner => "业主", "Owner";
    FirstAction => "首先", "First";
    Ended => "已恢复", "ended";
    TicketRaised => "待确认", "raised";
    TicketAcknowledged => "已确认", "acknowledged";
    TicketDispatched => "已派单", "dispatched";
    TicketRectified => "已整改", "rectified";
    TicketVerified => "已核实", "verified";
    TicketClosed => "已关闭", "closed";
    CatAlarm => "电气火灾报警", "Electrical fire alarm";
    CatFault => "探测器故障", "Detector fault";
    CatOffline => "设备离线", "Device offline";
    CatBattery => "电池电量低", "Battery low";
    CatSmoke => "烟雾报警", "Smoke alarm";
    CatTamper => "防拆报警", "Tamper";
    DoAlarm => "通知业主断开该回路，到场测量剩余电流和温度。", "Have the owner switch the circuit off; measure residual current and temperature on site.";
    DoFault => "检查探测器接线（断线或短路），必要时更换探测器。", "Check the detector's leads (open or short); replace it if needed.";
    DoOffline => "联系业主确认供电与网络，到场检查设备。", "Call the owner about power and network; check the device on site.";
    DoBattery => "安排更换电池。", "Arrange a battery change.";
    DoSmoke => "立即电话联系业主，必要时拨打 119。", "Call the owner at once; call 119 if needed.";
    DoTamper => "到场检查设备是否被拆卸或遮挡。", "Check on site whether the device was opened or removed.";
    Trend => "趋势", "Trend";
    Residual => "剩余电流 (mA)", "Residual current (mA)";
    Temperature => "温度 (°C)", "Temperature (°C)";
    NoReadings => "这段时间没有读数。", "No readings in this range.";
    KindMonitor => "电气火灾监控探测器", "Electrical-fire monitor";
    KindSmoke => "独立式烟感", "Smoke alarm";
    KindModbus => "Modbus 监控设备", "Modbus monitor";
    DevRegistered => "已登记", "registered";
    DevCommissioned => "已调试", "commissioned";
    DevInService => "运行中", "in service";
    DevDecommissioned => "已停用", "decommissioned";
    DeviceId => "设备编号", "Device id";
    Kind => "类型", "Kind";
    State => "状态", "State";
    Site => "场所", "Site";
    Room => "房间", "Room";
    Circuit => "回路", "Circuit";
    Cell => "网格", "Grid cell";
    Filter => "筛选", "Filter";
    Any => "全部", "any";
    Pending => "待登记设备（已上报但未登记）", "Pending devices (published, not registered)";
    FirstSeen => "首次上报", "First seen";
    LastSeen => "最近上报", "Last seen";
    Messages => "消息数", "Messages";
    Find => "查找", "Find";
    Binding => "绑定", "Binding";
    Save => "保存", "Save";
    Thresholds => "报警设定值", "Set-points";
    Channel => "通道", "Channel";
    Enabled => "启用", "Enabled";
    SetPoint => "设定值", "Set-point";
    Delay => "延时 (s)", "Delay (s)";
    AllowedRange => "国标允许范围", "Allowed (GB)";
    NoDevice => "没有这个设备，或不在您的区域内。", "No such device in your area.";
    Saved => "已保存。", "Saved.";
    Forbidden => "无权访问", "Not allowed";
    NotFound => "未找到", "Not found";
    Error => "出错了", "Something went wrong";
    Back => "返回", "Back";
    Version => "版本", "Version";
}

// The utility and report pages' texts (their own table; uses `messages!` above).
pub(crate) mod utility;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        for m in Msg::ALL {
            assert!(
                !Lang::Zh.t(*m).is_empty() && !Lang::En.t(*m).is_empty(),
                "{m:?}"
            );
        }
    }

    #[test]
    fn the_cookie_wins_then_accept_language_then_chinese() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.insert("accept-language", "en-US,en;q=0.9".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert("cookie", "a=b; fg_lang=zh-CN".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.insert("cookie", "fg_lang=en".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::En);
    }
}
