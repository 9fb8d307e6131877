// ~600 KB of mixed multilingual text, the same on every run: Zipf-distributed words (real common words plus
// syllable-made rare ones) in nine scripts, numbers, code, JSON and emoji.

function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const languages = [
  {
    name: "english", weight: 30, separator: " ", end: ". ",
    words: "the of and to in is that for it as with was on be at by this from have or one had not but what all were when we there can an your which their said if do will each about how up out them then she many some so these would other into has more her two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know".split(" "),
    syllables: ["ex", "per", "rou", "ter", "con", "tex", "mix", "tral", "gra", "di", "ent", "tion", "al", "ize", "ing", "ed", "ly"],
  },
  {
    name: "french", weight: 8, separator: " ", end: ". ",
    words: "le la les de des du un une et est en que qui dans pour pas sur au avec ce il elle nous vous ils sont être avoir fait plus très bien où été déjà après même ça français données modèle experts".split(" "),
    syllables: ["é", "tion", "ment", "eau", "ché", "pré", "ver", "sé", "oi", "que"],
  },
  {
    name: "german", weight: 6, separator: " ", end: ". ",
    words: "der die das und ist nicht ein eine zu den mit sich des auf für im dem von sie es als auch an werden aus er hat dass Straße Größe über für können müssen Modell Experten".split(" "),
    syllables: ["ver", "schaft", "ung", "lich", "ge", "keit", "ein", "ü", "ä", "ö", "ß"],
  },
  {
    name: "spanish", weight: 6, separator: " ", end: ". ",
    words: "el la de que y en los se del las un por con no una su para es al lo como más pero sus le ya o este sí porque esta entre cuando muy sin sobre también año niño corazón".split(" "),
    syllables: ["ción", "mente", "ado", "ía", "ñ", "es", "ar", "re", "con"],
  },
  {
    name: "russian", weight: 8, separator: " ", end: ". ",
    words: "и в не на я быть он с что а по это она этот к но они мы как из у который то за свой весь год от так о для ты же все тот мочь вы человек такой его сказать только модель эксперт".split(" "),
    syllables: ["ов", "ени", "ость", "ние", "про", "ска", "ть", "ый", "ая"],
  },
  {
    name: "chinese", weight: 12, separator: "", end: "。",
    words: "的 一 是 不 了 人 我 在 有 他 这 为 之 大 来 以 个 中 上 们 到 说 国 和 地 也 子 时 道 出 而 要 于 就 下 得 可 你 年 生 模型 专家 混合 语言 处理 今天 天气 公园 机器 学习".split(" "),
    syllables: ["龘", "鑫", "曌", "燚", "垚", "淼", "犇", "骉", "猋", "麤"],
  },
  {
    name: "japanese", weight: 8, separator: "", end: "。",
    words: "の に は を た が で て と し れ さ ある いる も する から な こと として い や れる など なっ ない この ため その あっ よう また もの という あり まで られ なる へ か だ これ 日本 東京 言語 モデル テキスト".split(" "),
    syllables: ["ヴ", "ぢ", "ゑ", "ゐ", "ヶ", "ゞ", "ヽ"],
  },
  {
    name: "korean", weight: 6, separator: " ", end: ". ",
    words: "이 그 저 것 수 등 들 및 에서 으로 하다 있다 되다 않다 없다 나 사람 우리 한국어 서울 대한민국 모델 전문가 언어 처리 오늘 날씨".split(" "),
    syllables: ["꿻", "뷁", "똠", "쀍", "햏", "꺅"],
  },
  {
    name: "arabic", weight: 6, separator: " ", end: ". ",
    words: "في من على إلى أن هذا التي الذي مع كان عن ما هو هي لا كل بين بعد قد اللغة العربية نموذج خبراء العالم مرحبا".split(" "),
    syllables: ["ال", "ية", "ات", "ون", "ين", "ة"],
  },
];

const snippets = [
  'function route(x) {\n  const scores = gate(x);\n  return topK(softmax(scores), 2);\n}\n',
  '{"model": "mixtral", "experts": 8, "top_k": 2, "layers": [1, 2, 3], "rope": {"base": 1000000}}\n',
  "def forward(self, x):\n    h = x + self.attn(self.norm1(x))\n    return h + self.moe(self.norm2(h))\n",
  "SELECT token, count(*) FROM corpus GROUP BY token ORDER BY 2 DESC LIMIT 10;\n",
  "🙂 👍🏽 🎉 👨‍👩‍👧‍👦 🇯🇵 ❤️ ",
];

function zipfPick(random, count) {
  // P(rank r) ~ 1 / (r + 1): sample by inverting the harmonic CDF approximately.
  const u = random();
  return Math.min(count - 1, Math.floor(Math.exp(u * Math.log(count + 1)) - 1));
}

function rareWord(random, syllables) {
  const parts = 2 + Math.floor(random() * 3);
  let word = "";
  for (let i = 0; i < parts; i++) word += syllables[Math.floor(random() * syllables.length)];
  return word;
}

export function benchmarkText(targetBytes = 600 * 1024, seed = 0) {
  const random = seededRandom(0xbe9c4 + seed);
  const totalWeight = languages.reduce((sum, l) => sum + l.weight, 0);
  const pieces = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    let text;
    if (random() < 0.06) {
      text = snippets[Math.floor(random() * snippets.length)];
    } else {
      let pick = random() * totalWeight;
      const language = languages.find((l) => (pick -= l.weight) < 0) ?? languages[0];
      const words = [];
      const count = 6 + Math.floor(random() * 18);
      for (let i = 0; i < count; i++) {
        const roll = random();
        if (roll < 0.1) words.push(rareWord(random, language.syllables));
        else if (roll < 0.13) words.push(String(Math.floor(random() * 100000)));
        else words.push(language.words[zipfPick(random, language.words.length)]);
      }
      let sentence = words.join(language.separator);
      if (language.separator === " ") sentence = sentence[0].toUpperCase() + sentence.slice(1);
      text = sentence + language.end + (random() < 0.15 ? "\n\n" : "");
    }
    pieces.push(text);
    bytes += Buffer.byteLength(text);
  }
  return pieces.join("");
}
