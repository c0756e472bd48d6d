"""The words of the sandbox dataset: topic vocabularies, nicknames, places, and the
reference note's text (sandbox/dataset.py draws every note from these).

Data only, apart from :class:`Topic`. Changing a word changes the notes of every seed
(their titles, tags, and the text drawn on their pictures), so tests that pin a
generated note pin these tables too.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_TITLE = "算法面经：字节豆包大模型11.13"
REFERENCE_TAGS = (
    "面试题",
    "大模型",
    "LLM",
    "面经",
    "字节豆包",
    "机器学习",
    "深度学习",
    "AI",
    "Agent",
)

IP_LOCATIONS = (
    "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "湖南", "福建", "山东",
    "陕西", "重庆", "天津", "河南", "安徽", "辽宁", "云南", "海外",
)  # fmt: skip
NICK_HEAD = (
    "小",
    "阿",
    "大",
    "橙子",
    "柚子",
    "咸鱼",
    "奶茶",
    "月亮",
    "星星",
    "木木",
    "番茄",
    "桃子",
)
NICK_TAIL = (
    "同学",
    "酱",
    "不吃香菜",
    "在学习",
    "的日常",
    "爱旅行",
    "码农",
    "Coding",
    "今天也要加油",
    "w",
    "_",
    "呀",
)


@dataclass(frozen=True)
class Topic:
    """Vocabulary of one kind of note. ``slots`` fill the ``{x}`` of title templates."""

    key: str
    core_tag: str
    tags: tuple[str, ...]
    titles: tuple[str, ...]
    slots: tuple[str, ...]
    descs: tuple[str, ...]
    image_kinds: tuple[str, ...]
    video_rate: float
    texts: tuple[str, ...]  # lines used on text pictures (questions, tips, steps)
    code: tuple[tuple[str, ...], ...] = ()

    @property
    def charset(self) -> frozenset[str]:
        """Every character that can appear in a title or tag of this topic."""
        return frozenset("".join(self.tags + self.titles + self.slots + (self.core_tag,)))


LLM_QUESTIONS = (
    "Transformer 中自注意力的计算过程",
    "为什么注意力分数要除以根号 d",
    "多头注意力相比单头有什么好处",
    "LayerNorm 和 BatchNorm 的区别",
    "Pre-Norm 和 Post-Norm 哪个训练更稳定",
    "介绍 RLHF 的三个阶段",
    "PPO 和 DPO 的区别是什么",
    "KV Cache 的原理和显存估算",
    "LoRA 的原理以及秩怎么选",
    "RoPE 位置编码如何做长度外推",
    "MoE 的路由和负载均衡怎么做",
    "大模型幻觉问题怎么缓解",
    "RAG 的完整流程和评估方法",
    "Agent 的规划和工具调用怎么设计",
    "FlashAttention 为什么更快",
    "SFT 数据怎么清洗和配比",
    "讲一下 GQA 和 MQA",
    "分布式训练中 ZeRO 的三个阶段",
    "如何评估大模型的推理能力",
    "温度和 top-p 采样的作用",
)
CODE_SNIPPETS = (
    (
        "def attention(q, k, v):",
        "    d = q.shape[-1]",
        "    s = q @ k.T / d ** 0.5",
        "    w = softmax(s, axis=-1)",
        "    return w @ v",
    ),
    (
        "class LRUCache:",
        "    def __init__(self, cap):",
        "        self.cap = cap",
        "        self.data = OrderedDict()",
        "    def get(self, key):",
        "        if key not in self.data:",
        "            return -1",
        "        self.data.move_to_end(key)",
        "        return self.data[key]",
    ),
    (
        "def two_sum(nums, target):",
        "    seen = {}",
        "    for i, x in enumerate(nums):",
        "        if target - x in seen:",
        "            return [seen[target - x], i]",
        "        seen[x] = i",
    ),
    (
        "for epoch in range(3):",
        "    for batch in loader:",
        "        loss = model(**batch).loss",
        "        loss.backward()",
        "        optimizer.step()",
        "        optimizer.zero_grad()",
    ),
)

TOPICS: tuple[Topic, ...] = (
    Topic(
        key="llm",
        core_tag="大模型",
        tags=(
            "大模型",
            "LLM",
            "面试题",
            "面经",
            "AI",
            "深度学习",
            "机器学习",
            "Agent",
            "算法工程师",
            "秋招",
        ),
        titles=(
            "{x}大模型面经分享",
            "大模型算法岗{x}面试复盘",
            "大模型高频面试题整理（{x}）",
            "{x}大模型实习一面二面",
            "LLM面试必问：{x}",
        ),
        slots=(
            "阿里通义",
            "腾讯混元",
            "百度文心",
            "美团",
            "小红书",
            "快手",
            "月之暗面",
            "智谱",
            "KV Cache",
            "RLHF",
        ),
        descs=(
            "整理了最近面试被问到的问题，希望对大家有帮助",
            "面试官人很好，问得比较细，附上准备思路",
            "建议先把 Transformer 的细节吃透再去面",
        ),
        image_kinds=("qa_card", "qa_card", "code", "list"),
        video_rate=0.0,
        texts=LLM_QUESTIONS,
        code=CODE_SNIPPETS,
    ),
    Topic(
        key="code",
        core_tag="编程",
        tags=("编程", "Python", "算法", "数据结构", "LeetCode", "程序员", "后端开发", "计算机"),
        titles=("{x}刷题笔记", "程序员必会的{x}", "一图看懂{x}", "{x}常见坑总结"),
        slots=(
            "Python",
            "二分查找",
            "动态规划",
            "链表",
            "Git",
            "Linux命令",
            "SQL",
            "正则表达式",
            "JS的undefined",
        ),
        descs=("自己整理的学习笔记，收藏慢慢看", "每天进步一点点", "代码都在图里了"),
        image_kinds=("code", "list", "qa_card"),
        video_rate=0.1,
        texts=(
            "先想清楚边界条件再写代码",
            "写完用小例子手动走一遍",
            "二分查找注意左闭右开",
            "动态规划先写状态转移方程",
            "链表题多用虚拟头节点",
            "双指针适合有序数组",
            "哈希表用空间换时间",
            "递归一定要有终止条件",
        ),
        code=CODE_SNIPPETS,
    ),
    Topic(
        key="career",
        core_tag="求职",
        tags=("求职", "面试", "简历", "秋招", "春招", "offer", "实习", "职场"),
        titles=("{x}简历怎么写", "拿到{x}offer的经验", "{x}面试自我介绍模板", "{x}求职时间线"),
        slots=("互联网", "大厂", "外企", "国企", "应届生", "转行"),
        descs=("踩过的坑都写在这里了", "希望大家都能拿到满意的offer", "有问题评论区问我"),
        image_kinds=("list", "qa_card", "photo"),
        video_rate=0.1,
        texts=(
            "简历控制在一页以内",
            "项目经历写清楚结果和数据",
            "提前准备三个项目故事",
            "反问环节问团队和业务",
            "面试前复习岗位要求",
            "每次面试后及时复盘",
            "投递时间越早越好",
        ),
    ),
    Topic(
        key="study",
        core_tag="学习",
        tags=("学习", "考研", "自律", "学习方法", "英语", "时间管理", "大学生"),
        titles=("{x}学习计划", "{x}上岸经验", "{x}高效学习法", "坚持{x}的第100天"),
        slots=("考研", "雅思", "四六级", "早起", "背单词", "期末"),
        descs=("一起加油吧", "方法比努力更重要", "打卡记录一下"),
        image_kinds=("list", "photo"),
        video_rate=0.15,
        texts=(
            "早上背单词效果最好",
            "番茄钟二十五分钟一组",
            "错题本每周复习一次",
            "睡前回顾当天内容",
            "先做真题再做模拟",
        ),
    ),
    Topic(
        key="travel",
        core_tag="旅行",
        tags=("旅行", "旅游攻略", "周末去哪儿", "拍照", "自驾游", "小众景点", "citywalk"),
        titles=("{x}三天两晚攻略", "{x}小众景点推荐", "在{x}的周末", "{x}citywalk路线"),
        slots=("成都", "大理", "杭州", "西安", "厦门", "青岛", "长沙", "重庆"),
        descs=("风景真的太美了", "人少景美，强烈推荐", "附上详细路线和花费"),
        image_kinds=("photo", "photo", "photo", "list"),
        video_rate=0.25,
        texts=(
            "第一天到达后去古城",
            "第二天早起看日出",
            "第三天去湖边骑行",
            "住宿选在市中心",
            "记得提前预约门票",
        ),
    ),
    Topic(
        key="food",
        core_tag="美食",
        tags=("美食", "家常菜", "食谱", "减脂餐", "烘焙", "探店", "早餐"),
        titles=("{x}的做法", "零失败{x}", "一周{x}不重样", "{x}探店"),
        slots=("红烧肉", "番茄炒蛋", "减脂餐", "戚风蛋糕", "早餐", "火锅"),
        descs=("简单好做，新手也能学会", "家里人都说好吃", "配方在图里"),
        image_kinds=("photo", "photo", "list"),
        video_rate=0.3,
        texts=(
            "食材提前腌制半小时",
            "大火烧开转小火",
            "最后撒上葱花",
            "少油少盐更健康",
            "烤箱预热一百八十度",
        ),
    ),
    Topic(
        key="beauty",
        core_tag="护肤",
        tags=("护肤", "美妆", "化妆教程", "口红", "敏感肌"),
        titles=("{x}护肤步骤", "{x}妆容教程", "{x}好物分享"),
        slots=("秋冬", "新手", "学生党", "通勤", "敏感肌"),
        descs=("亲测好用", "不是广告", "按步骤来就行"),
        image_kinds=("photo", "list"),
        video_rate=0.3,
        texts=("先做好清洁", "保湿一定要到位", "防晒每天都要涂", "底妆少量多次"),
    ),
    Topic(
        key="fitness",
        core_tag="健身",
        tags=("健身", "减脂", "跑步", "瑜伽", "居家锻炼"),
        titles=("{x}训练计划", "{x}打卡", "{x}减脂经验"),
        slots=("居家", "跑步", "瑜伽", "增肌", "新手"),
        descs=("坚持就是胜利", "动作要标准", "一起练起来"),
        image_kinds=("photo", "list"),
        video_rate=0.35,
        texts=("热身十分钟", "深蹲三组每组十五个", "平板支撑一分钟", "拉伸放松"),
    ),
    Topic(
        key="photo",
        core_tag="摄影",
        tags=("摄影", "手机摄影", "构图", "调色", "光影"),
        titles=("{x}拍照技巧", "{x}调色参数", "用手机拍出{x}"),
        slots=("夜景", "人像", "街拍", "日落", "胶片感"),
        descs=("参数都在图里", "多拍多练", "光影真的太迷人了"),
        image_kinds=("photo", "photo", "photo"),
        video_rate=0.1,
        texts=("曝光降低一点", "对比度加十", "色温偏冷", "三分法构图"),
    ),
    Topic(
        key="pets",
        core_tag="萌宠",
        tags=("萌宠", "猫咪", "狗狗", "养猫", "铲屎官"),
        titles=("{x}的日常", "养{x}必备清单", "我家{x}太可爱了"),
        slots=("猫咪", "柯基", "布偶猫", "橘猫", "金毛"),
        descs=("每天都被治愈", "新手养宠经验", "可爱暴击"),
        image_kinds=("photo", "photo", "list"),
        video_rate=0.4,
        texts=("定期驱虫", "猫粮选择看成分", "每天陪玩半小时", "注意饮水"),
    ),
)


REFERENCE_ROUNDS = (
    (
        "字节豆包大模型 一面",
        (
            "1. 自我介绍，讲一个大模型项目",
            "2. Transformer 自注意力怎么计算",
            "3. 为什么要除以根号 d",
            "4. 多头注意力的作用",
            "5. LayerNorm 和 BatchNorm 的区别",
            "6. 代码题：实现 LRU 缓存",
        ),
    ),
    (
        "字节豆包大模型 二面",
        (
            "1. 介绍 RLHF 的三个阶段",
            "2. PPO 和 DPO 有什么区别",
            "3. DPO 的损失函数怎么推导",
            "4. KV Cache 原理和显存估算",
            "5. LoRA 的原理，秩怎么选",
            "6. 代码题：二叉树最大路径和",
        ),
    ),
    (
        "字节豆包大模型 三面",
        (
            "1. 如何评估一个 Agent 的效果",
            "2. 长上下文和位置编码外推",
            "3. 幻觉怎么缓解，讲讲 RAG",
            "4. MoE 的路由和负载均衡",
            "5. 你对豆包大模型的理解",
            "6. 职业规划和期望",
        ),
    ),
)
REFERENCE_DESC = (
    "字节豆包大模型算法岗，一共三轮技术面，整理了每一轮的问题，图里是原题。\n"
    "整体感觉很重视基础和手撕代码，建议把 Transformer、RLHF、KV Cache 吃透。\n"
)
